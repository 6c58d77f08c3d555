"""The instance selector's parameters, declared once: the constructor, its checks, the CLI flags, the recipe
keys and the dataset card's reproduce command all come from this dataclass."""
from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any, Optional

from ..annealing import annealing
from ..params import boolean, check_params, fraction, integer, one_of, optional, param, passes, string
from ..validation import check_keep
from .embeddings import EMBEDDER_BACKENDS, PRECISIONS
from .registry import AUTO_CANDIDATES, METHODS, candidate_methods


def _embedder(name: str, value: Any) -> Any:
    if value is None or isinstance(value, str) or hasattr(value, "encode"):
        return value
    import os

    if isinstance(value, os.PathLike):
        return value
    raise TypeError(f"embedder must be a path, a hub id or a SentenceTransformer, got {type(value).__name__}")


def _cache_dir(name: str, value: Any) -> Any:
    import os

    if value is None or value is False or isinstance(value, (str, os.PathLike)):
        return value
    raise TypeError(f"cache_dir must be a folder, None (the default cache) or False (no cache), got {value!r}")


@dataclass(eq=False, repr=False)
class SelectionParams:
    """Every parameter of :class:`~hf_qselect.selection.InstanceSelector`, with its help, check, flag and recipe key."""

    keep: float = param(0.5, "fraction of rows to keep, in (0, 1]; exactly round(keep * n) rows are kept", check=passes(check_keep))
    method: str = param("qubo", "selection method; auto: the best candidate in a paired 3-fold probe on the rows given",
                        check=one_of(lambda: [*METHODS, "auto"]), choices=lambda: [*METHODS, "auto"])
    text_column: str = param("text", "column holding the text to embed (without it: a 'messages', 'prompt'/'completion' or "
                             "Alpaca 'instruction'/'input'/'output' row is embedded whole)", check=string(), recipe=False)
    label_column: Optional[str] = param("label", "column holding the class label; none: select without class labels (one group, "
                                        "or the strata)", check=string(none=True), parse=optional(str), recipe=False)
    embedder: Any = param(None, "sentence-transformers path, hub id or model; None = the packaged all-MiniLM-L6-v2",
                          check=_embedder, parse=optional(str), recipe_type=Optional[str])
    solver: Any = annealing("solver")
    seed: Optional[int] = annealing("seed", help="seed of every random choice: the same seed keeps the same rows")
    _: KW_ONLY
    block_size: int = annealing("block_size")
    num_reads: int = annealing("num_reads")
    num_sweeps: Optional[int] = annealing("num_sweeps")
    n_jobs: Optional[int] = annealing("n_jobs")
    backend: str = annealing("backend")
    batch_size: int = param(64, "embedding batch size", check=integer(1), provenance=False)
    device: Optional[str] = param(None, "device the embedder runs on (cpu, cuda, ...), or several, comma-separated (cuda:0,cuda:1), "
                                  "one process each; None = automatic (every GPU when there are several)", check=string(none=True),
                                  provenance=False)
    precision: str = param("auto", "dtype the embedder runs in; auto: float32 on CPU, bfloat16 (or float16) on CUDA",
                           check=one_of(lambda: list(PRECISIONS)), choices=lambda: list(PRECISIONS))
    embedder_backend: str = param("auto", "how the embedder runs: auto (the default): on the CPU the fastest installed of openvino and "
                                  "onnx whose vectors match torch float32 (cosine >= 0.999 on a sample of the rows), from 2,000 rows; "
                                  "torch below that and on a GPU; "
                                  "torch; onnx / onnx-int8 under onnxruntime on the CPU "
                                  "(exported once and cached); openvino: the onnx export under OpenVINO; static: a token table distilled once "
                                  "from the model (Model2Vec's recipe), far faster and less accurate",
                                  check=one_of(lambda: ["auto", *EMBEDDER_BACKENDS]), choices=lambda: ["auto", *EMBEDDER_BACKENDS])
    cache_dir: Any = param(None, "embedding cache folder; None = $HF_QSELECT_CACHE or ~/.cache/hf_qselect, False = no cache",
                           check=_cache_dir, parse=optional(str), provenance=False, recipe_type=Optional[str])
    show_progress: bool = param(True, "progress bars", check=boolean, provenance=False)
    sampler_params: Optional[dict] = annealing("sampler_params")
    class_balance: Optional[float] = param(None, "class quotas ~ n_c^(1 - b); None = the method's default (0.5 for qubo, 0 otherwise; 0 for strata)",
                                           check=fraction(0.0, 1.0, none=True), parse=optional(float), recipe_type=Optional[float])
    denoise: bool = param(True, "qubo: keep rows an out-of-fold LDA confidently assigns to another class last", check=boolean)
    noise_confidence: float = param(0.8, "confidence that makes a row likely mislabelled, in (1/classes, 1]",
                                    check=fraction(0.0, 1.0, low_open=True))
    polish: bool = annealing("polish", help="swap a kept and a dropped row of a block while that lowers its energy")
    score_rows: Optional[int] = param(50_000, "qubo: the out-of-fold LDA is cross-fitted on a stratified sample of at most this many "
                                      "rows and scores the others; None = every row", check=integer(10, none=True),
                                      parse=optional(int), recipe_type=Optional[int])
    chunk_rows: int = param(50_000, "qubo: a class larger than this is cut into chunks of at most this many rows, each "
                            "partitioned, built and annealed by one worker (its memory ~ chunk_rows x dim)", check=integer(2))
    strata: Optional[str] = param(None, "label_column=None: a column (category, source) whose values keep their share of the "
                                  "rows, or 'kmeans': clusters of the embeddings; none: one group", check=string(none=True),
                                  parse=optional(str), recipe_type=Optional[str])
    strata_clusters: int = param(16, "strata='kmeans': number of clusters", check=integer(2))
    quality: Optional[str] = param(None, "a numeric column scoring each row, higher is better (a reward model's score, a "
                                   "complexity score), or a scorer run by quality_model: ifd (instruction-following "
                                   "difficulty) or loss; qubo adds it as a linear term, deita and quality rank by it",
                                   check=string(none=True), parse=optional(str), recipe_type=Optional[str])
    quality_model: Optional[str] = param(None, "quality=ifd/loss: the causal LM that scores the rows (a folder, package:NAME, "
                                         "or a .gguf file)", check=string(none=True), parse=optional(str),
                                         recipe_type=Optional[str])
    quality_gguf_file: Optional[str] = param(None, "quality_model: a GGUF file inside that folder", check=string(none=True),
                                             parse=optional(str), recipe_type=Optional[str])
    quality_max_length: int = param(256, "quality=ifd/loss: tokens per row (the response keeps at least half)", check=integer(4))
    quality_weight: float = param(1.0, "qubo: weight of the quality term, in standard deviations of each block's coverage "
                                  "costs per standard deviation of quality", check=fraction(0.0, 1e6))
    candidates: Any = param(AUTO_CANDIDATES, "method='auto': the methods it compares (comma-separated on the CLI)",
                            check=passes(candidate_methods), parse=lambda text: tuple(candidate_methods(text)), recipe_type=str)

    def check_params(self) -> dict[str, Any]:
        """Every parameter checked (one-line errors naming it); the checked values, ``self`` unchanged."""
        return check_params(self)
