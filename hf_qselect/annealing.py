"""The annealing parameter group, declared once: every application includes these fields by name.

Each field's help, check, CLI parser, choices and recipe type live here; an application picks the fields it offers
with :func:`annealing`, overriding only the default or the provenance flag (and, for ``seed``, what else the seed
drives); recipe keys follow the one scheme ``<application prefix>_<name>``. :func:`anneal_settings` builds the core's :class:`~hf_qselect.qubo.AnnealSettings` from any
object carrying them, so a new annealer option is one entry here and one field in ``AnnealSettings``.
"""
from __future__ import annotations

from typing import Any, Optional

from .params import boolean, integer, json_object, optional, param, passes
from .qubo import BACKENDS, SOLVERS, AnnealSettings, check_backend, check_solver


def check_sampler_params(name: str, value: Any) -> Any:
    if value is not None and not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict of sampler keywords or None, got {value!r}")
    return value


# name -> (default, help, declaration keywords)
ANNEALING: dict[str, tuple[Any, str, dict[str, Any]]] = {
    "solver": ("sa", "annealer name or a dimod.Sampler",
               dict(check=passes(check_solver), parse=str, choices=lambda: list(SOLVERS), recipe_type=str)),
    "seed": (0, "seed of the annealer", dict(check=integer(none=True), parse=optional(int), recipe_type=Optional[int])),
    "block_size": (100, "largest block annealed at once (100 fits a QPU clique)", dict(check=integer(2))),
    "num_reads": (4, "annealer reads per block", dict(check=integer(1))),
    "num_sweeps": (1000, "annealer sweeps per read (samplers that take it)",
                   dict(check=integer(1, none=True), parse=optional(int), recipe_type=Optional[int])),
    "n_jobs": (-1, "joblib workers for the blocks (-1: all cores); small problems run in-process",
               dict(check=integer(none=True), parse=optional(int), provenance=False, recipe_type=Optional[int])),
    "backend": ("loky", "where the blocks run: loky (this machine), dask or ray (the cluster at DASK_SCHEDULER_ADDRESS / "
                "RAY_ADDRESS, else a local one); the answer is the same",
                dict(check=passes(check_backend), choices=lambda: list(BACKENDS), provenance=False)),
    "sampler_params": (None, "extra keyword arguments for the sampler, as a dict (JSON on the CLI)",
                       dict(check=check_sampler_params, parse=optional(json_object), recipe_type=Optional[str])),
    "polish": (True, "swap a kept and a dropped variable of a block while that lowers its energy", dict(check=boolean)),
}
# the fields AnnealSettings takes (backend is a context, not a setting)
SETTINGS = ("solver", "seed", "block_size", "num_reads", "num_sweeps", "n_jobs", "sampler_params", "polish")
_UNSET = object()


def annealing(name: str, default: Any = _UNSET, *, help: str | None = None, provenance: bool | None = None) -> Any:
    """The dataclass field of annealing parameter ``name``, with this application's default and help."""
    if name not in ANNEALING:
        raise KeyError(f"{name!r} is not an annealing parameter; they are {sorted(ANNEALING)}")
    base_default, base_help, meta = ANNEALING[name]
    meta = dict(meta)
    if provenance is not None:
        meta["provenance"] = provenance
    return param(base_default if default is _UNSET else default, help or base_help, **meta)


def anneal_settings(params: Any, **overrides: Any) -> AnnealSettings:
    """``AnnealSettings`` from the annealing fields ``params`` carries, then ``overrides`` (what the application fixes)."""
    values = {name: getattr(params, name) for name in SETTINGS if hasattr(params, name)}
    if "block_size" in values:
        values["block_size"] = int(values["block_size"])
    if "polish" in values:
        values["polish"] = bool(values["polish"])
    values.update(overrides)
    return AnnealSettings(**values)
