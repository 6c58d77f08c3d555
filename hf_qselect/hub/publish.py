"""Publish a reduced dataset as a Hub-ready folder (Parquet shards, card, map, report) and read it back.

The folder is written to a temporary sibling and renamed into place only when complete, so a
failure never leaves a half-written folder. The upload (``push=True``) happens after that.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict, load_dataset

from ..data import input_paths
from ..output_dir import check_output_dir, staged_output
from ..provenance import public_params, public_path
from ..selection import InstanceSelector, SelectionReport, row_hashes
from .dataset_card import render_dataset_card
from .selection_map import plot_selection_map

SOURCE_INDEX = "source_index"
REPORT_FILE = "selection_report.json"
MAP_FILE = "selection_map.png"
SCORES_FILE = "row_scores.parquet"
ROWS_PER_SHARD = 500_000
REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", re.ASCII)


def check_repo_id(repo_id: str | None) -> None:
    """``namespace/name`` in ASCII letters, digits, ``_``, ``.`` and ``-``: nothing before or after it."""
    if repo_id is not None and (not isinstance(repo_id, str) or not REPO_ID.fullmatch(repo_id)):
        raise ValueError(f"repo_id must look like 'namespace/name' (ASCII letters, digits, '_', '.', '-'), got {repo_id!r}")


def _splits(dataset: Dataset | DatasetDict) -> dict[str, Dataset]:
    if isinstance(dataset, DatasetDict):
        if "train" not in dataset:
            raise KeyError(f"the DatasetDict has no 'train' split to publish; splits are {list(dataset)}")
        return dict(dataset)
    if isinstance(dataset, Dataset):
        return {"train": dataset}
    raise TypeError(f"expected the reduced Dataset or DatasetDict, got {type(dataset).__name__}")


def with_source_index(train: Dataset, selection: InstanceSelector | SelectionReport) -> Dataset:
    """The reduced train split with ``source_index``, after checking it matches the selection."""
    if isinstance(selection, InstanceSelector):
        selection._check_fitted()
        indices = selection.indices_
        if len(train) != len(indices):
            raise ValueError(f"the dataset has {len(train)} rows but the selector kept {len(indices)}; pass the dataset that selector.select() returned")
        column = selection.text_column
        if selection.row_hashes_ is not None and column in train.column_names:
            if not np.array_equal(row_hashes(list(train[column])), selection.row_hashes_[indices]):
                raise ValueError(f"the dataset's {column!r} rows are not the rows this selector kept; pass the dataset that selector.select() returned")
        if SOURCE_INDEX in train.column_names:
            train = train.remove_columns(SOURCE_INDEX)
        return train.add_column(SOURCE_INDEX, indices.astype(np.int64).tolist())
    if isinstance(selection, SelectionReport):
        if len(train) != selection.n_kept:
            raise ValueError(f"the dataset has {len(train)} rows but the report kept {selection.n_kept}")
        if SOURCE_INDEX not in train.column_names:
            raise ValueError(f"with a report instead of a selector the dataset needs its {SOURCE_INDEX!r} column (as `hf-qselect select` writes it)")
        return train
    raise TypeError(f"expected a fitted InstanceSelector or a SelectionReport, got {type(selection).__name__}")


def _identity_index(data: Dataset) -> Dataset:
    """An untouched split: ``source_index`` is simply its row number, so every split has the same features."""
    if SOURCE_INDEX in data.column_names:
        return data
    return data.add_column(SOURCE_INDEX, list(range(len(data))))


def _write_shards(folder: Path, split: str, data: Dataset) -> None:
    shards = max(1, -(-len(data) // ROWS_PER_SHARD))
    for i in range(shards):
        part = data.shard(num_shards=shards, index=i, contiguous=True)
        part.to_parquet(str(folder / "data" / f"{split}-{i:05d}-of-{shards:05d}.parquet"))


def publish_reduced(
    dataset: Dataset | DatasetDict,
    selector_or_report: InstanceSelector | SelectionReport,
    repo_id: str | None = None,
    local_dir: str | os.PathLike | None = None,
    push: bool = False,
    token: str | None = None,
    private: bool = True,
    *,
    source: str | None = None,
    revision: str | None = None,
    overwrite: bool = False,
    inputs: list[str | os.PathLike] | tuple = (),
) -> Path:
    """Write ``local_dir`` (Parquet per split, ``README.md`` card, map PNG, report JSON); upload it if ``push``.

    ``dataset`` is the reduced dataset (``selector.select(...)``); other splits of a ``DatasetDict`` are
    copied unchanged. ``source`` names the source dataset in the card (hub id, or a local path, recorded
    by its file name only). ``local_dir`` is refused when it is the current directory or one of its parents,
    or is, holds or sits inside one of ``inputs`` or the dataset's own files; ``overwrite=True`` replaces a
    non-empty ``local_dir`` atomically (old aside, new in, old removed last).
    """
    inputs = [*inputs, *input_paths(None, dataset)]
    check_repo_id(repo_id)
    if push and repo_id is None:
        raise ValueError("push=True needs repo_id='namespace/name'")
    if local_dir is None:
        if repo_id is None:
            raise ValueError("give local_dir, repo_id, or both")
        local_dir = Path("reduced") / repo_id.replace("/", "__")
    target = check_output_dir(local_dir, inputs=inputs, overwrite=overwrite, flag="overwrite=True", what="local_dir")
    splits = _splits(dataset)
    splits = {
        name: with_source_index(data, selector_or_report) if name == "train" else _identity_index(data)
        for name, data in splits.items()
    }
    report = selector_or_report.report_ if isinstance(selector_or_report, InstanceSelector) else selector_or_report
    source = public_path(source or report.source) or "unnamed source dataset"

    with staged_output(target) as staging:
        (staging / "data").mkdir()
        for split, data in splits.items():
            _write_shards(staging, split, data)
        map_name = None
        selector = selector_or_report if isinstance(selector_or_report, InstanceSelector) else None
        if selector is not None and getattr(selector, "embeddings_", None) is not None:
            plot_selection_map(selector.embeddings_, selector.codes_, selector.mask_, selector.class_names_, staging / MAP_FILE, title=f"{source}: {report.summary().split(' [')[0]}")
            map_name = MAP_FILE
        record = {**report.to_dict(), "source": source, "revision": revision, "repo_id": repo_id}
        record["params"] = public_params(record.get("params") or {})
        record["kept_indices_column"] = SOURCE_INDEX
        (staging / REPORT_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n")
        flagged = scores_name = None
        if selector is not None and getattr(selector, "embeddings_", None) is not None:
            scores = selector.row_scores_
            scores.to_parquet(staging / SCORES_FILE, index=False)
            flagged, scores_name = int(scores["flagged"].sum()), SCORES_FILE
        card = render_dataset_card(splits, report, source, revision=revision, selection_map=map_name, flagged=flagged, scores_file=scores_name)
        card.save(str(staging / "README.md"))
    if push:
        upload(target, repo_id, token=token, private=private)
    return target


def upload(folder: Path, repo_id: str, token: str | None = None, private: bool = True) -> str:
    """Upload a complete folder as a dataset repo; errors say the local folder is intact."""
    from huggingface_hub import HfApi, get_token

    token = token or get_token()
    if not token:
        raise RuntimeError(
            f"no Hugging Face token: the folder {folder} is complete, but nothing was uploaded. "
            "Run `huggingface-cli login`, set HF_TOKEN, or pass token=..."
        )
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset",
                                 commit_message="Upload reduced dataset made with hf_qselect")
    except Exception as err:  # network, auth, quota: the local folder stays valid
        raise RuntimeError(f"upload of {folder} to {repo_id} failed ({err}); the local folder is complete") from err
    return str(getattr(info, "commit_url", info))


def load_reduced(path_or_repo: str | os.PathLike, revision: str | None = None) -> tuple[DatasetDict, dict[str, Any]]:
    """Read a published reduced dataset (local folder or hub id) and its provenance dict.

    A local folder is checked first: its report must be valid JSON, every shard listed in ``data/`` must be
    readable Parquet, and the ``train`` row count must equal the report's ``n_kept``; each failure names the file.
    """
    from ..data import looks_like_path

    path = Path(path_or_repo).expanduser()
    local = path.exists()
    if not local:
        if looks_like_path(str(path_or_repo)) or isinstance(path_or_repo, os.PathLike):
            raise FileNotFoundError(f"no such folder: {path_or_repo}")
        from huggingface_hub import constants, snapshot_download

        if constants.HF_HUB_OFFLINE:
            raise FileNotFoundError(f"{path_or_repo!r} is not a local folder, and the Hub is offline (HF_HUB_OFFLINE=1)")
        path = Path(snapshot_download(str(path_or_repo), repo_type="dataset", revision=revision))
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is a file; load_reduced reads the folder publish_reduced wrote")
    report_path = path / REPORT_FILE
    if not report_path.exists():
        raise FileNotFoundError(f"{path} has no {REPORT_FILE}: not a dataset published by hf_qselect")
    try:
        provenance = json.loads(report_path.read_text(encoding="utf-8"))
        if not isinstance(provenance, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{report_path} is not a valid selection report ({err})") from None
    shards = sorted((path / "data").glob("*.parquet"))
    if not shards:
        raise FileNotFoundError(f"{path / 'data'} holds no Parquet shards")
    _check_shards(shards)
    # a local folder may have been rewritten in place (overwrite=True): never trust a cached copy of it
    data = load_dataset(str(path), download_mode="force_redownload" if local else None)
    kept = provenance.get("n_kept")
    if kept is not None and "train" in data and len(data["train"]) != kept:
        raise ValueError(f"{path}: the train split has {len(data['train'])} rows but {REPORT_FILE} says {kept} were kept")
    return data, provenance


def _check_shards(shards: list[Path]) -> None:
    """Every shard is readable Parquet and every ``-of-N`` series is complete; errors name the file."""
    import pyarrow.parquet as pq

    series: dict[tuple[str, int], set[int]] = {}
    for shard in shards:
        try:
            pq.ParquetFile(shard).metadata  # reads the footer: fails on a truncated file
        except Exception as err:
            raise ValueError(f"shard {shard} is not readable Parquet (truncated?): {err}") from None
        match = re.fullmatch(r"(.+)-(\d+)-of-(\d+)\.parquet", shard.name)
        if match:
            series.setdefault((match[1], int(match[3])), set()).add(int(match[2]))
    for (split, total), seen in series.items():
        missing = sorted(set(range(total)) - seen)
        if missing:
            raise FileNotFoundError(f"shard {split}-{missing[0]:05d}-of-{total:05d}.parquet is missing from {shards[0].parent}")
