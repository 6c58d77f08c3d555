"""Annealers by name, or any ``dimod.Sampler``, with what each can take declared on its plan.

``sa``, ``tabu`` and ``steepest`` are dwave-samplers' local solvers; ``exact`` is dimod's brute force
(tiny blocks only); ``qpu`` (``DWaveCliqueSampler``: blocks are dense, so one clique embedding per size,
cached by dwave-system, with coupling ranges scaled for the QPU) and ``hybrid`` are D-Wave Leap solvers
and need a Leap API token.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dimod

LOCAL_SOLVERS = ("sa", "tabu", "steepest", "exact")
CLOUD_SOLVERS = ("qpu", "hybrid")
SOLVERS = LOCAL_SOLVERS + CLOUD_SOLVERS
EXACT_MAX_VARIABLES = 20
CONNECT_TIMEOUT = 10  # seconds for each Leap request when the sampler is created

TOKEN_HELP = (
    "solver={solver!r} runs on D-Wave Leap and needs an API token, but none is configured. "
    "Set the DWAVE_API_TOKEN environment variable, or run `dwave config create` once "
    "(token from https://cloud.dwavesys.com/leap/), or use a local solver: solver='sa'."
)


@dataclass(frozen=True)
class SolverPlan:
    """A sampler and what it can take.

    ``max_variables``: variables per call, several blocks batched as one disjoint-union BQM (``None``: one
    block a call). ``max_block``: the largest block it accepts (``None``: any). ``serial``: calls must not run
    in parallel (a remote service with its own queue).
    """

    name: str
    sampler: dimod.Sampler
    max_variables: int | None = None
    max_block: int | None = None
    serial: bool = False


def leap_token() -> str | None:
    """The Leap API token from the environment or the dwave config file, if any."""
    token = os.environ.get("DWAVE_API_TOKEN")
    if token:
        return token
    try:
        from dwave.cloud.config import load_config

        return load_config().get("token") or None
    except Exception:  # a missing or unreadable config file means no token
        return None


def require_token(solver: str) -> str:
    """Return the Leap token or fail at once with how to configure one."""
    token = leap_token()
    if not token:
        raise RuntimeError(TOKEN_HELP.format(solver=solver))
    return token


def check_solver(solver: Any) -> None:
    """Refuse anything that is neither a solver name nor a ``dimod.Sampler``, without connecting to anything."""
    if isinstance(solver, dimod.Sampler):
        return
    if not isinstance(solver, str) or solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS} or a dimod.Sampler instance, got {solver!r}")


def get_solver(solver: Any) -> SolverPlan:
    """Resolve a solver name, a ``dimod.Sampler`` or a ready :class:`SolverPlan` into a plan."""
    if isinstance(solver, SolverPlan):
        return solver
    check_solver(solver)
    if isinstance(solver, dimod.Sampler):
        return SolverPlan(type(solver).__name__, solver)
    if solver == "sa":
        from dwave.samplers import SimulatedAnnealingSampler

        return SolverPlan(solver, SimulatedAnnealingSampler(), max_variables=20_000)
    if solver == "tabu":
        from dwave.samplers import TabuSampler

        return SolverPlan(solver, TabuSampler())
    if solver == "steepest":
        from dwave.samplers import SteepestDescentSolver

        return SolverPlan(solver, SteepestDescentSolver(), max_variables=20_000)
    if solver == "exact":
        return SolverPlan(solver, dimod.ExactSolver(), max_block=EXACT_MAX_VARIABLES)
    token = require_token(solver)
    from dwave.system import DWaveCliqueSampler, LeapHybridSampler

    try:
        if solver == "qpu":
            return SolverPlan(solver, DWaveCliqueSampler(token=token, request_timeout=CONNECT_TIMEOUT), serial=True)
        return SolverPlan(solver, LeapHybridSampler(token=token, request_timeout=CONNECT_TIMEOUT), max_variables=1_000_000, serial=True)
    except Exception as err:  # no network, a refused token, no solver available: one line, before any work
        detail = " ".join(str(err).split())[:200]
        raise RuntimeError(f"solver={solver!r}: could not connect to D-Wave Leap ({type(err).__name__}: {detail}); "
                           "check the network and the token, or use a local solver: solver='sa'") from None


def sample_kwargs(sampler: dimod.Sampler, *, num_reads: int, num_sweeps: int | None, seed: int | None) -> dict:
    """The keyword arguments this sampler understands, out of ``num_reads``, ``num_sweeps`` and ``seed``."""
    wanted = {"num_reads": num_reads, "num_sweeps": num_sweeps, "seed": seed}
    accepted = getattr(sampler, "parameters", {}) or {}
    return {k: v for k, v in wanted.items() if k in accepted and v is not None}
