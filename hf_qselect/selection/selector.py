"""``InstanceSelector``: fit on a labelled text dataset, then ``select`` or use it as a ``Dataset.filter`` function."""
from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict

from ..annealing import anneal_settings
from ..params import DeclaredParams, fraction
from ..provenance import public_params, public_path
from ..qubo import backend_context, get_solver
from ..validation import check_columns, check_dataset, check_min_keep, label_codes, label_values
from .backend_choice import backend_precision
from .embedding_checks import check_embeddings
from .embeddings import PRECISIONS, embed_dataset, embedder_name
from .options import MethodOptions
from .params import SelectionParams
from .quotas import keep_count
from .registry import METHODS as METHOD_SPECS, candidate_methods, effective_class_balance, get_method
from .report import SelectionReport


AUTO_FOLDS = 3  # method="auto" compares its candidates on one 3-fold split of the rows it is given


def row_hashes(texts: list[str]) -> np.ndarray:
    """A stable 64-bit hash per text, used to check that a filtered dataset is the one fitted."""
    return np.array(
        [int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(), "little", signed=True) for t in texts],
        dtype=np.int64,
    )


def class_names(dataset: Dataset, label_column: str, classes: np.ndarray) -> list[str]:
    """Readable class names: a ``ClassLabel``'s names, else the label values as strings."""
    feature = dataset.features[label_column]
    if isinstance(feature, ClassLabel):
        return [feature.int2str(int(c)) for c in classes]
    return [str(c) for c in classes]


def ensure_every_class(mask: np.ndarray, codes: np.ndarray, seed: int | None) -> int:
    """Give every class at least one kept row (in place), keeping the count; return how many classes needed it.

    A method without class quotas (``pasin2024``'s random batches) can empty a small class. Such a class gets
    one of its rows (seeded), and the class with the most kept rows gives one up.
    """
    rng = np.random.default_rng(seed)
    kept = np.bincount(codes[mask], minlength=int(codes.max()) + 1)
    empty = np.flatnonzero(kept == 0)
    for c in empty:
        donor = int(np.argmax(kept))
        mask[rng.choice(np.flatnonzero(mask & (codes == donor)))] = False
        mask[rng.choice(np.flatnonzero(codes == c))] = True
        kept[donor] -= 1
        kept[c] += 1
    return len(empty)


class InstanceSelector(DeclaredParams, SelectionParams):
    """Choose ``keep`` of a labelled text dataset's rows by solving a QUBO on an annealer.

    Parameters (declared once in :class:`~hf_qselect.selection.params.SelectionParams`, which also gives the
    CLI flags and recipe keys):

    keep: fraction of rows to keep, in (0, 1]; exactly ``round(keep * n)`` rows are kept, at least one per class.
    method: ``"qubo"`` (default formulation), ``"pasin2024"`` (published QUBO), ``"random"`` (stratified),
        a classical baseline: ``"e2sc"``, ``"biois"``, ``"facility"``, ``"semdedup"``; or ``"auto"``: the best of
        ``candidates`` in a paired 3-fold probe on the rows given (recorded in ``report_.auto``).
    text_column, label_column: columns of the dataset.
    embedder: sentence-transformers model path, hub id or object; ``None`` = packaged all-MiniLM-L6-v2.
    solver: ``"sa"``, ``"tabu"``, ``"steepest"``, ``"exact"``, ``"qpu"``, ``"hybrid"`` or any ``dimod.Sampler``.
    seed: makes the selection reproducible (default 0).
    block_size: largest block solved at once (100 fits a QPU clique).
    num_reads, num_sweeps, sampler_params: annealer settings (passed when the sampler accepts them).
    n_jobs: joblib workers for the blocks (-1: all cores; a joblib backend context is honoured). Problems too
        small to pay for a pool run in this process.
    batch_size, device, precision: how the embedder runs; ``precision="auto"`` is float32 on CPU and
        bfloat16/float16 on CUDA (``"bfloat16"`` is worth trying on CPUs with native bfloat16).
    cache_dir: embedding cache folder, ``None`` = ``$HF_QSELECT_CACHE`` or ``~/.cache/hf_qselect``, ``False`` = off.
    class_balance: class quotas proportional to ``n_c ** (1 - class_balance)``; ``None`` = the method's
        default (0.5, square-root quotas, for ``"qubo"``; 0, stratified, for the others).
    denoise: ``"qubo"`` only: rows an out-of-fold LDA confidently assigns to another class are kept last.
    noise_confidence: the confidence that makes such a row "likely mislabelled" (``"qubo"`` and ``"biois"``).
    polish: swap a kept and a dropped row of a block while that lowers its energy, after annealing
        (``"qubo"``; ``"pasin2024"`` always uses the annealer's answer as published).
    score_rows: ``"qubo"``: past this many rows the out-of-fold LDA is cross-fitted on a stratified sample and
        scores the other rows a block at a time (``None``: every row is cross-fitted).
    chunk_rows: ``"qubo"``: a class larger than this is cut into chunks, each partitioned, built and annealed by
        one job (on the ``backend``'s workers); smaller problems are built here and only the blocks are farmed out.
        ``embeddings`` given as a memory-mapped ``.npy`` (``np.load(path, mmap_mode="r")``) stay on disk: the
        jobs read their own rows.

    Fitted attributes: ``mask_``, ``indices_``, ``report_``, ``classes_``, ``codes_`` (label index per row),
    ``n_rows_``, ``fingerprint_``, ``embeddings_``, ``blocks_``, ``method_`` (the method that selected),
    ``row_scores_`` (per-row diagnostics). Works with ``sklearn.base.clone``.
    """

    def provenance(self, precision: str | None = None) -> dict[str, Any]:
        """The parameters as a report or card records them: names for model and sampler objects, file names for
        local paths, and the precision the embedder really ran in."""
        params = self.get_params()
        if not isinstance(params["embedder"], (str, type(None))):
            params["embedder"] = embedder_name(params["embedder"])
        if not isinstance(params["solver"], str):
            params["solver"] = type(params["solver"]).__name__
        if precision is not None and precision in PRECISIONS:  # an ONNX backend's tag is recorded as embedder_backend
            params["precision"] = precision
        return public_params(params)

    def __repr__(self) -> str:
        return (
            f"InstanceSelector(keep={self.keep}, method={self.method!r}, text_column={self.text_column!r}, "
            f"label_column={self.label_column!r}, solver={self.solver!r}, seed={self.seed})"
        )

    # ------------------------------------------------------------------ fit
    def fit(self, dataset: Dataset | DatasetDict, embeddings: np.ndarray | None = None) -> "InstanceSelector":
        """Choose the rows to keep. ``DatasetDict``: its ``train`` split. ``embeddings``: skip embedding."""
        began = time.perf_counter()
        ds = check_dataset(dataset)
        checked = self.check_params()
        keep = checked["keep"]
        candidates = candidate_methods(self.candidates) if self.method == "auto" else [self.method]
        specs = [get_method(m) for m in candidates]
        unlabelled = self.label_column is None
        clusters = unlabelled and self.strata == "kmeans"
        self._check_grouping(ds, candidates, specs, unlabelled)
        needs_embeddings = any(s.needs_embeddings for s in specs) or clusters
        needs_text = embeddings is None and needs_embeddings
        plan = get_solver(self.solver) if any(s.anneals for s in specs) else None
        n_keep = keep_count(keep, len(ds))
        if not clusters:  # class labels or a strata column: checked before any embedding
            codes, classes, names = self._groups(ds, None)
            check_min_keep(keep, n_keep, len(ds), len(classes))
        if not unlabelled:
            fraction(1.0 / len(classes), 1.0, low_open=True)("noise_confidence", self.noise_confidence)
        texts, text_format = self._texts(ds, needs_text)
        quality = self._quality(ds, candidates, specs)
        start = time.perf_counter()
        precision = backend_precision(self.embedder, texts, self.embedder_backend, precision=self.precision, device=self.device,
                                      cache_dir=self.cache_dir) if needs_text else None
        choosing = time.perf_counter() - start  # the auto backend's check (and a first export): part of embedding

        timings: dict[str, float] = {}
        cached = False
        vectors = None
        method, comparison = self.method, None
        with backend_context(self.backend, self.n_jobs):  # a cluster embeds the shards of a large input too
            if embeddings is not None:
                vectors = check_embeddings(embeddings, len(ds))
                timings["prepare"] = time.perf_counter() - began
            elif needs_embeddings:
                start = time.perf_counter()
                raw, cached = embed_dataset(
                    ds, self.text_column, texts, self.embedder, cache_dir=self.cache_dir,
                    batch_size=self.batch_size, device=self.device, show_progress=self.show_progress, precision=precision,
                )
                vectors = check_embeddings(raw, len(ds))
                timings["embed"] = time.perf_counter() - start + choosing
            if clusters:
                codes, classes, names = self._groups(ds, vectors)
                check_min_keep(keep, n_keep, len(ds), len(classes))
            if method == "auto":
                start = time.perf_counter()
                method, comparison = self._choose_method(candidates, vectors, codes, keep, plan)
                timings["auto"] = time.perf_counter() - start
            result, topped_up = self._run_method(method, vectors, codes, n_keep, plan, self.seed, self.show_progress, not unlabelled,
                                                 quality)
        timings.update(result.timings)

        self.mask_ = result.mask
        self.indices_ = np.flatnonzero(result.mask)
        self.classes_ = classes
        self.class_names_ = names
        self.codes_ = codes
        self.n_rows_ = len(ds)
        self.fingerprint_ = ds._fingerprint
        self.embeddings_ = vectors
        self.blocks_ = result.blocks
        self.method_ = method
        self._proba = result.proba
        self.row_hashes_ = row_hashes(texts) if texts is not None else None
        before = np.bincount(codes, minlength=len(classes))
        after = np.bincount(codes[result.mask], minlength=len(classes))
        self.report_ = SelectionReport(
            method=self.method,
            chosen_method=method if self.method == "auto" else None,
            auto=comparison,
            keep=keep,
            n_rows=len(ds),
            n_kept=n_keep,
            kept_per_class={c: {"before": int(b), "after": int(a)} for c, b, a in zip(self.class_names_, before, after)},
            embedder=self._embedder_label(embeddings, vectors),
            embedding_precision=precision,
            formulation=result.formulation,
            solver=plan.name if plan else None,
            seed=self.seed,
            block_size=int(self.block_size) if plan else None,
            n_blocks=len(result.blocks),
            num_reads=self.num_reads if plan else None,
            num_sweeps=self.num_sweeps if plan else None,
            energy=result.energy,
            feasible_blocks=result.feasible_blocks,
            repaired_blocks=result.repaired_blocks,
            likely_mislabelled=result.noisy,
            classes_topped_up=topped_up,
            embeddings_cached=cached,
            source_fingerprint=ds._fingerprint,
            params=self.provenance(precision),
            class_balance=self._class_balance(method),
            grouping=self._grouping_text(len(classes)),
            objective=self._objective_text(method),
            text_format=text_format,
            timings={k: round(v, 4) for k, v in timings.items()},
        )
        return self

    # ------------------------------------------------------------------ groups and texts
    def _check_grouping(self, ds: Dataset, candidates: list[str], specs: list, unlabelled: bool) -> None:
        """Before any work: the label column, or (without labels) label-free methods and the strata column."""
        if not unlabelled:
            if self.strata is not None:
                raise ValueError(f"strata={self.strata!r} applies with label_column=None; with class labels the classes are the strata")
            if self.label_column not in ds.column_names:
                raise KeyError(f"column(s) label_column={self.label_column!r} not in the dataset; its columns are {ds.column_names} "
                               "(to select without class labels pass label_column=None, --label-column none)")
            return
        if self.method == "auto":
            raise ValueError("method='auto' compares methods by macro-F1 on class labels; with label_column=None name a method")
        needing = [m for m, s in zip(candidates, specs) if s.needs_labels]
        if needing:
            free = [m for m, s in METHOD_SPECS.items() if not s.needs_labels]
            raise ValueError(f"method={needing[0]!r} needs class labels; with label_column=None use one of {free}")
        if self.strata not in (None, "kmeans"):
            check_columns(ds, strata=self.strata)

    def _groups(self, ds: Dataset, vectors: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """``(codes, groups, names)``: the classes, the strata (a column's values or k-means clusters), or one group."""
        if self.label_column is not None:
            codes, classes = label_codes(label_values(ds, self.label_column), self.label_column)
            return codes, classes, class_names(ds, self.label_column, classes)
        if self.strata is None:
            return np.zeros(len(ds), dtype=np.int64), np.array(["all"]), ["all"]
        if self.strata == "kmeans":
            from sklearn.cluster import MiniBatchKMeans

            k = int(min(self.strata_clusters, len(ds)))
            found = MiniBatchKMeans(n_clusters=k, random_state=0 if self.seed is None else self.seed, n_init=3,
                                    batch_size=4096).fit_predict(np.asarray(vectors, dtype=np.float32))
            classes, codes = np.unique(found, return_inverse=True)
            return codes.astype(np.int64), classes, [f"cluster {int(c)}" for c in classes]
        values = ds[self.strata]
        missing = [i for i, v in enumerate(values) if v is None]
        if missing:
            raise ValueError(f"strata column {self.strata!r} has missing values at rows {missing[:10]}")
        if any(isinstance(v, (list, dict)) for v in values):
            raise ValueError(f"strata column {self.strata!r} must hold one value per row (a category or a source), not lists")
        classes, codes = np.unique(np.asarray([str(v) for v in values]), return_inverse=True)
        return codes.astype(np.int64), classes, [str(c) for c in classes]

    def _quality(self, ds: Dataset, candidates: list[str], specs: list) -> np.ndarray | None:
        """The quality standardised (mean 0, sd 1; all 0 when constant): a column, or a causal LM's scores (``ifd``,
        ``loss``); every setting is checked before any scoring."""
        from .quality_scores import SCORERS, causal_quality, check_pairs_format, is_scorer

        needing = [m for m, s in zip(candidates, specs) if s.needs_quality]
        if self.quality is None:
            if needing:
                raise ValueError(f"method={needing[0]!r} ranks rows by quality: give quality=<a numeric column> (--quality)")
            return None
        if is_scorer(self.quality, ds.column_names):
            if self.quality_model is None:
                raise ValueError(f"quality={self.quality!r} scores rows with a causal LM: give quality_model=<a folder, "
                                 "package:NAME or a .gguf file>")
            check_pairs_format(ds, self.text_column, self.quality)
            values = causal_quality(ds, self.quality, self.quality_model, self.quality_gguf_file, text_column=self.text_column,
                                    max_length=int(self.quality_max_length), cache_dir=self.cache_dir, show_progress=self.show_progress)
        else:
            values = self._quality_column(ds, SCORERS)
        spread = float(values.std())
        return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)

    def _quality_column(self, ds: Dataset, scorers: tuple[str, ...]) -> np.ndarray:
        """The quality column as float64, checked: present, numeric, finite."""
        import pyarrow as pa

        if self.quality not in ds.column_names:
            raise KeyError(f"quality={self.quality!r} is neither a column of the dataset ({ds.column_names}) nor a scorer "
                           f"({', '.join(scorers)})")
        array = ds.with_format("arrow")[:][self.quality]
        if not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type)):
            raise TypeError(f"quality column {self.quality!r} must hold one number per row, but its type is {array.type}")
        values = array.to_numpy(zero_copy_only=False).astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(f"quality column {self.quality!r} has missing or infinite values at rows {bad[:10].tolist()}")
        return values

    def _objective_text(self, method: str) -> str | None:
        """The terms the chosen method optimised, with their weights (for the report and the card)."""
        if method != "qubo":
            return f"{method} (quality {self.quality!r})" if get_method(method).needs_quality else None
        text = "kernel herding: coverage + redundancy"
        if self.quality is not None and self.quality_weight:
            text += f" + quality {self.quality!r} x {self.quality_weight:g}"
        return text

    def _class_balance(self, method: str) -> float | None:
        """The quota exponent: the given one, else the method's default with class labels, else 0 (strata keep their
        share of the rows)."""
        if self.label_column is None and self.class_balance is None:
            return 0.0 if effective_class_balance(method, None) is not None else None
        return effective_class_balance(method, self.class_balance)

    def _grouping_text(self, n_groups: int) -> str:
        if self.label_column is not None:
            return f"classes of {self.label_column!r}"
        if self.strata is None:
            return "one group (no class labels)"
        if self.strata == "kmeans":
            return f"strata: {n_groups} k-means clusters of the embeddings"
        return f"strata: values of {self.strata!r}"

    def _texts(self, ds: Dataset, needed: bool) -> tuple[list[str] | None, str | None]:
        """The rows as texts (the text column, or chat / instruction rows rendered whole) and their format; ``None``
        when no text is needed and none is found."""
        from ..text_formats import row_texts

        try:
            return row_texts(ds, self.text_column)
        except KeyError:
            if needed:
                raise
            return None, None

    def _run_method(self, method: str, vectors: np.ndarray | None, codes: np.ndarray, n_keep: int, plan: Any, seed: int | None,
                    show_progress: bool, labelled: bool = True, quality: np.ndarray | None = None) -> tuple[Any, int]:
        """Run one registered method; every class keeps a row. Returns the result and how many classes were topped up."""
        options = MethodOptions(
            anneal=anneal_settings(self, solver=plan, seed=seed, show_progress=show_progress),
            class_balance=self._class_balance(method) or 0.0,
            denoise=self.denoise and labelled, noise_confidence=float(self.noise_confidence), score_rows=self.score_rows,
            chunk_rows=int(self.chunk_rows), quality=quality, quality_weight=float(self.quality_weight),
        )
        if vectors is not None and vectors.dtype != np.float32 and method != "qubo":  # only "qubo" reads float16 files in place
            vectors = np.asarray(vectors, dtype=np.float32)
        result = get_method(method).fn(vectors, codes, n_keep, options)
        if int(result.mask.sum()) != n_keep:  # an internal invariant, never the user's fault
            raise RuntimeError(f"method {method!r} kept {int(result.mask.sum())} rows instead of {n_keep}")
        return result, ensure_every_class(result.mask, codes, seed)

    def _choose_method(self, candidates: list[str], vectors: np.ndarray, codes: np.ndarray, keep: float, plan: Any) -> tuple[str, dict]:
        """``method="auto"``: the candidate with the best mean macro-F1 in a paired 3-fold probe on these rows."""
        from .probe import paired_probe

        def select(x: np.ndarray, c: np.ndarray, method: str, k: float, seed: int) -> np.ndarray:
            result, _ = self._run_method(method, x, c, keep_count(k, len(c)), plan, seed, False)
            return np.flatnonzero(result.mask)

        folds = int(min(AUTO_FOLDS, np.bincount(codes).min()))
        if folds < 2:
            raise ValueError(f"method='auto' compares candidates on 2 or more folds, but a class of {self.label_column!r} has one row")
        probe = paired_probe(vectors, codes, select, candidates, [keep], folds=folds, repeats=1, seed=self.seed or 0,
                             show_progress=self.show_progress)
        means = {m: float(np.mean(probe.scores[m][keep])) for m in candidates}
        chosen = max(candidates, key=lambda m: (means[m], -candidates.index(m)))
        return chosen, {"chosen": chosen, "folds": folds, "full": float(np.mean(probe.full)), "mean_macro_f1": means,
                        "per_fold": {m: probe.scores[m][keep].tolist() for m in candidates}}

    @property
    def row_scores_(self):
        """Per-row diagnostics as a pandas DataFrame: ``row``, ``label``, ``label_proba`` (out-of-fold probability
        of the given label), ``predicted``, ``flagged`` (likely mislabelled), ``block`` (-1: none), ``kept``.

        The probabilities are the out-of-fold LDA the default method scores rows with; other methods compute them
        here on first access (``None`` columns when there are no embeddings, as for ``method="random"``)."""
        import pandas as pd

        from .scoring import likely_mislabelled, out_of_fold_proba

        self._check_fitted()
        proba = getattr(self, "_proba", None)
        if proba is None and getattr(self, "embeddings_", None) is not None and self.label_column is not None:
            proba = self._proba = out_of_fold_proba(self.embeddings_, self.codes_, seed=0 if self.seed is None else self.seed,
                                                    max_rows=self.score_rows)
        block = np.full(self.n_rows_, -1, dtype=np.int64)
        for b, rows in enumerate(self.blocks_):
            block[rows] = b
        names = np.asarray(self.class_names_, dtype=object)
        table = {"row": np.arange(self.n_rows_), "label": names[self.codes_]}
        if proba is not None:
            table["label_proba"] = proba[np.arange(self.n_rows_), self.codes_]
            table["predicted"] = names[proba.argmax(axis=1)]
            table["flagged"] = likely_mislabelled(proba, self.codes_, float(self.noise_confidence))
        else:
            table.update(label_proba=None, predicted=None, flagged=None)
        table.update(block=block, kept=self.mask_)
        return pd.DataFrame(table)

    def _embedder_label(self, given: np.ndarray | None, vectors: np.ndarray | None) -> str | None:
        """What the report names as the embedder: the model, ``"precomputed"``, or nothing (random)."""
        if given is not None:
            return "precomputed"
        return public_path(embedder_name(self.embedder)) if vectors is not None else None

    # ------------------------------------------------------------------ use
    def _check_fitted(self) -> None:
        if not hasattr(self, "mask_"):
            raise RuntimeError("this InstanceSelector is not fitted yet: call selector.fit(dataset) first")

    def _check_same_rows(self, ds: Dataset) -> None:
        """Refuse a dataset other than the fitted one (same fingerprint, or same texts row for row)."""
        if len(ds) != self.n_rows_:
            raise ValueError(f"the dataset has {len(ds)} rows but the selector was fitted on {self.n_rows_}; fit it on this dataset")
        if ds._fingerprint == self.fingerprint_:
            return
        if self.row_hashes_ is not None:
            texts, _ = self._texts(ds, needed=False)
            if texts is not None and np.array_equal(row_hashes(texts), self.row_hashes_):
                return
        raise ValueError(
            f"the dataset (fingerprint {ds._fingerprint}) is not the one the selector was fitted on "
            f"(fingerprint {self.fingerprint_}) and its {self.text_column!r} rows differ; fit it on this dataset"
        )

    def select(self, dataset: Dataset | DatasetDict) -> Dataset | DatasetDict:
        """The kept rows, in their original order. A ``DatasetDict`` keeps its other splits untouched."""
        self._check_fitted()
        if isinstance(dataset, DatasetDict):
            out = DatasetDict(dict(dataset))
            out["train"] = self.select(check_dataset(dataset))
            return out
        ds = check_dataset(dataset)
        self._check_same_rows(ds)
        return ds.select(self.indices_)

    def fit_select(self, dataset: Dataset | DatasetDict, embeddings: np.ndarray | None = None) -> Dataset | DatasetDict:
        """``fit`` then ``select``."""
        return self.fit(dataset, embeddings=embeddings).select(dataset)

    def __call__(self, batch: dict, indices: int | list[int]) -> bool | list[bool]:
        """``Dataset.filter(selector, with_indices=True, batched=True)`` keeps the same rows as ``select``."""
        self._check_fitted()
        single = np.isscalar(indices)
        idx = np.atleast_1d(np.asarray(indices, dtype=np.int64))
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_rows_):
            raise ValueError(
                f"filter reached row {int(idx.max())} but the selector was fitted on {self.n_rows_} rows; "
                "filter the dataset it was fitted on (for a DatasetDict, filter its 'train' split or call select)"
            )
        if self.row_hashes_ is not None and isinstance(batch, Mapping) and self.text_column in batch:
            texts = batch[self.text_column]
            texts = [texts] if single else texts
            if not np.array_equal(row_hashes(list(texts)), self.row_hashes_[idx]):
                raise ValueError(
                    f"the rows being filtered differ from the fitted dataset in column {self.text_column!r}; "
                    "filter the dataset the selector was fitted on (for a DatasetDict, its 'train' split)"
                )
        keep = self.mask_[idx]
        return bool(keep[0]) if single else keep.tolist()

    def __getstate__(self) -> dict:
        """Pickle (and ``datasets`` fingerprint) without embeddings or an in-memory embedder model."""
        state = dict(self.__dict__)
        state.pop("embeddings_", None)
        state.pop("_proba", None)
        if not isinstance(state.get("embedder"), (str, type(None))):
            state["embedder"] = embedder_name(state["embedder"])
        return state
