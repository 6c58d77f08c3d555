"""Annealers by name, or any ``dimod.Sampler``.

``sa``, ``tabu`` and ``steepest`` are dwave-samplers' local solvers; ``exact`` is
dimod's brute force (tiny blocks only); ``qpu`` and ``hybrid`` are D-Wave Leap
solvers and need a Leap API token.
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
    """How blocks are grouped into sampler calls: ``max_variables`` per call (None: one block a call)."""

    name: str
    sampler: dimod.Sampler
    max_variables: int | None


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


class CliqueEmbeddingSampler(dimod.Sampler):
    """QPU sampler that finds one clique minor embedding per block size and reuses it.

    Blocks are dense (the cardinality penalty couples every pair), so a clique embedding
    of size ``m`` serves every block of ``m`` rows.
    """

    def __init__(self, child: Any, target_graph: Any = None):
        self.child = child
        self.target_graph = target_graph
        self._composites: dict[int, Any] = {}

    @property
    def parameters(self) -> dict:
        return dict(self.child.parameters)

    @property
    def properties(self) -> dict:
        return {"child_properties": dict(self.child.properties)}

    def sample(self, bqm: dimod.BinaryQuadraticModel, **kwargs):
        from dwave.system import FixedEmbeddingComposite
        from minorminer.busclique import find_clique_embedding

        size = bqm.num_variables
        if size not in self._composites:
            graph = self.target_graph if self.target_graph is not None else self.child.to_networkx_graph()
            embedding = find_clique_embedding(size, graph)
            if not embedding:
                raise ValueError(f"no clique embedding of {size} variables on this QPU; use a smaller block_size")
            self._composites[size] = (FixedEmbeddingComposite(self.child, embedding), list(range(size)))
        composite, labels = self._composites[size]
        relabelled = bqm.relabel_variables(dict(zip(bqm.variables, labels)), inplace=False)
        result = composite.sample(relabelled, **kwargs)
        return result.relabel_variables(dict(zip(labels, bqm.variables)), inplace=False)


def get_solver(solver: Any) -> SolverPlan:
    """Resolve a solver name or ``dimod.Sampler`` into a :class:`SolverPlan`."""
    if isinstance(solver, dimod.Sampler):
        return SolverPlan(type(solver).__name__, solver, None)
    if not isinstance(solver, str) or solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS} or a dimod.Sampler instance, got {solver!r}")
    if solver == "sa":
        from dwave.samplers import SimulatedAnnealingSampler

        return SolverPlan(solver, SimulatedAnnealingSampler(), 20_000)
    if solver == "tabu":
        from dwave.samplers import TabuSampler

        return SolverPlan(solver, TabuSampler(), None)
    if solver == "steepest":
        from dwave.samplers import SteepestDescentSolver

        return SolverPlan(solver, SteepestDescentSolver(), 20_000)
    if solver == "exact":
        return SolverPlan(solver, dimod.ExactSolver(), None)
    token = require_token(solver)
    from dwave.system import DWaveSampler, LeapHybridSampler

    try:
        if solver == "qpu":
            return SolverPlan(solver, CliqueEmbeddingSampler(DWaveSampler(token=token, request_timeout=CONNECT_TIMEOUT)), None)
        return SolverPlan(solver, LeapHybridSampler(token=token, request_timeout=CONNECT_TIMEOUT), 1_000_000)
    except Exception as err:  # no network, a refused token, no solver available: one line, before any work
        detail = " ".join(str(err).split())[:200]
        raise RuntimeError(f"solver={solver!r}: could not connect to D-Wave Leap ({type(err).__name__}: {detail}); "
                           "check the network and the token, or use a local solver: solver='sa'") from None


def sample_kwargs(sampler: dimod.Sampler, *, num_reads: int, num_sweeps: int | None, seed: int | None) -> dict:
    """The keyword arguments this sampler understands, out of ``num_reads``, ``num_sweeps`` and ``seed``."""
    wanted = {"num_reads": num_reads, "num_sweeps": num_sweeps, "seed": seed}
    accepted = getattr(sampler, "parameters", {}) or {}
    return {k: v for k, v in wanted.items() if k in accepted and v is not None}
