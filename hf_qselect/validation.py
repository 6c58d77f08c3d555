"""Input checks shared by the selector, the trainer and the CLI.

Every check raises before anything is computed or modified, with a message that
names the offending column, parameter or value.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from datasets import Dataset, DatasetDict, IterableDataset, IterableDatasetDict

STRING_DTYPES = {"string", "large_string"}


def check_keep(keep: Any, name: str = "keep") -> float:
    """Return ``keep`` as a float in (0, 1] or raise ``ValueError`` naming it (as ``name``)."""
    if isinstance(keep, bool) or not isinstance(keep, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a fraction in (0, 1], got {keep!r} of type {type(keep).__name__}")
    keep = float(keep)
    if not (0.0 < keep <= 1.0) or np.isnan(keep):
        raise ValueError(f"{name} must be a fraction in (0, 1], got {name}={keep}")
    return keep


MATERIALISE = ("selection needs every row at once. Load the data without streaming=True, or select from a materialised "
               "sample of stated size: Dataset.from_list(list(stream.take(N))) (or Dataset.from_generator(lambda: iter(stream), "
               "features=stream.features) for all of it)")


def check_dataset(dataset: Any, *, split: str = "train") -> Dataset:
    """Return the ``Dataset`` to select from (the ``split`` of a ``DatasetDict``)."""
    if isinstance(dataset, (IterableDataset, IterableDatasetDict)):
        raise TypeError(f"IterableDataset is not supported: {MATERIALISE}")
    if isinstance(dataset, DatasetDict):
        if split not in dataset:
            raise KeyError(f"DatasetDict has no split {split!r}; splits are {list(dataset)}")
        dataset = dataset[split]
    if not isinstance(dataset, Dataset):
        raise TypeError(f"expected a datasets.Dataset or DatasetDict, got {type(dataset).__name__}")
    if len(dataset) == 0:
        raise ValueError("the dataset is empty: there is nothing to select from")
    return dataset


def check_columns(dataset: Dataset, **columns: str | None) -> None:
    """Raise ``KeyError`` naming every ``role=column`` that the dataset lacks."""
    missing = [f"{role}={name!r}" for role, name in columns.items() if name is not None and name not in dataset.column_names]
    if missing:
        raise KeyError(f"column(s) {', '.join(missing)} not in the dataset; its columns are {dataset.column_names}")


def text_values(dataset: Dataset, column: str, positions: Sequence[int] | None = None) -> list[str]:
    """Return the text column as a list of strings, refusing non-string columns and missing values (named by their
    row in the source: ``positions[i]`` for the i-th row when ``dataset`` is a sample of it)."""
    feature = dataset.features[column]
    dtype = getattr(feature, "dtype", None)
    if dtype not in STRING_DTYPES:
        raise TypeError(
            f"text column {column!r} must hold strings, but its feature is {feature!r}; "
            "pass the raw text column as text_column (tokenized ids cannot be embedded)"
        )
    texts = dataset[column]
    texts = list(texts) if not isinstance(texts, list) else texts
    bad = [i if positions is None else int(positions[i]) for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValueError(f"text column {column!r} has missing (None) values at rows {sorted(bad)[:10]}")
    return texts


def check_labels(values: Sequence[Any], column: str) -> list[Any]:
    """Return class labels as given, with integral floats made ints; refuse lists and regression targets."""
    values = list(values)
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in values):
        raise ValueError(f"label column {column!r} has missing values")
    if any(isinstance(v, (list, tuple, dict, np.ndarray)) for v in values):
        raise ValueError(f"label column {column!r} holds lists (multi-label); selection needs one class label per row (a list of "
                         "token ids is not one either): give a class column, or label_column=None to select without class labels")
    floats = [v for v in values if isinstance(v, (float, np.floating))]
    if floats:
        fractional = [v for v in floats if not float(v).is_integer()]
        if fractional:
            raise ValueError(
                f"label column {column!r} holds non-integer numbers (e.g. {fractional[0]!r}): it looks like a regression "
                "target, not classes; pass a classification column as the label column (or threshold it into one first)"
            )
        values = [int(v) if isinstance(v, (float, np.floating)) else v for v in values]
    return values


def label_values(dataset: Dataset, column: str) -> Sequence[Any]:
    """A label column: read through Arrow as a NumPy array when it holds integers without nulls (a million rows
    in well under a second), else as the values ``dataset[column]`` gives."""
    import pyarrow as pa

    array = dataset.with_format("arrow")[:][column]
    if (pa.types.is_integer(array.type) or pa.types.is_boolean(array.type)) and array.null_count == 0:
        return array.to_numpy()
    return dataset[column]


def label_codes(labels: Sequence[Any], column: str, task: str = "instance selection") -> tuple[np.ndarray, np.ndarray]:
    """Encode labels as 0..C-1; return ``(codes, classes)``. Needs rows of at least two classes (``task`` names
    what needs them in the error)."""
    if len(labels) == 0:
        raise ValueError(f"label column {column!r} has no rows; {task} needs labelled rows")
    whole = isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "iub"  # nothing to check
    array = labels if whole else np.asarray(check_labels(labels, column))
    if array.dtype == object:
        array = array.astype(str)
    classes, codes = np.unique(array, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            f"label column {column!r} has a single class ({classes[0]!r}); "
            f"{task} needs at least two classes"
        )
    return codes.astype(np.int64), classes


def check_min_keep(keep: float, n_keep: int, n_rows: int, n_classes: int) -> None:
    """Every class keeps at least one row, so ``keep`` must leave at least one row per class."""
    if n_keep < n_classes:
        minimum = (n_classes - 0.5) / n_rows
        raise ValueError(
            f"keep={keep} keeps {n_keep} of {n_rows} rows, fewer than the {n_classes} classes; every class keeps at "
            f"least one row, so keep must be at least {minimum:.4g}"
        )
