"""Every selection method by name, with what it needs: embeddings, an annealer, its default class balance."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import baselines, methods
from .options import MethodOptions, MethodResult

MethodFn = Callable[[np.ndarray | None, np.ndarray, int, MethodOptions], MethodResult]


@dataclass(frozen=True)
class MethodSpec:
    """A method and its needs. ``class_balance``: the quota exponent used when the user gives none."""

    fn: MethodFn
    needs_embeddings: bool = True
    anneals: bool = False
    class_balance: float | None = 0.0
    needs_labels: bool = False
    needs_quality: bool = False
    summary: str = ""


METHODS: dict[str, MethodSpec] = {
    "qubo": MethodSpec(methods.select_mmd, anneals=True, class_balance=0.5, summary="MMD kernel-herding QUBO (default)"),
    "pasin2024": MethodSpec(methods.select_pasin2024, anneals=True, class_balance=None, needs_labels=True,
                            summary="Pasin et al. 2024's published QUBO"),
    "random": MethodSpec(methods.select_random, needs_embeddings=False, summary="stratified random rows"),
    "e2sc": MethodSpec(baselines.select_e2sc, needs_labels=True, summary="E2SC (SIGIR 2023)"),
    "biois": MethodSpec(baselines.select_biois, needs_labels=True, summary="biO-IS (TOIS 2025)"),
    "facility": MethodSpec(baselines.select_facility, summary="facility location, lazy greedy"),
    "semdedup": MethodSpec(baselines.select_semdedup, summary="SemDeDup"),
    "kcenter": MethodSpec(baselines.select_kcenter, summary="greedy k-center coreset"),
    "deita": MethodSpec(baselines.select_deita, needs_quality=True, summary="DEITA: quality first, skipping near-duplicates"),
    "quality": MethodSpec(baselines.select_quality, needs_embeddings=False, needs_quality=True, summary="the top rows by quality"),
}


def get_method(name: str) -> MethodSpec:
    """The spec of ``name``, or a ``ValueError`` listing the methods."""
    if name not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)} (or 'auto'), got {name!r}")
    return METHODS[name]


AUTO_CANDIDATES = ("qubo", "pasin2024", "biois", "facility")


def candidate_methods(candidates) -> list[str]:
    """``method="auto"``'s candidates as a list: a tuple or list of names, or one comma-separated string."""
    names = [c.strip() for c in candidates.split(",")] if isinstance(candidates, str) else list(candidates)
    if not names:
        raise ValueError("candidates must name at least one method")
    for name in names:
        get_method(name)
    return names


def effective_class_balance(method: str, class_balance: float | None) -> float | None:
    """The class balance a method uses: the given one, else its default (``None``: it has no class quotas)."""
    spec = get_method(method)
    if spec.class_balance is None:
        return None
    return float(class_balance) if class_balance is not None else spec.class_balance
