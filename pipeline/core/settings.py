"""Every setting a user can give, with its default, its vocabulary and its help text: the CLI's options
are generated from these fields (``pipeline.cli.options``), so a knob is declared once, here.

Only dataclasses and vocabularies live here, so the CLI can read them without importing torch. Each class
validates itself when built, with a message that names the option to fix.
"""

from __future__ import annotations

import functools
import re
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any

from pipeline.core.errors import EncajesError

POOLINGS = ("mean", "cls")
DTYPES = ("fp32", "bf16", "fp16")
STORES = ("auto", "pt", "npy")
ENGINES = ("local", "ray")
INDEX_KINDS = ("auto", "exact", "hnsw", "ivf", "ivfpq")
LAYER_ITEM = r"(?:last|all|last4|first-last|-?\d+)"
LAYERS_PATTERN = rf"\s*{LAYER_ITEM}\s*(?:,\s*{LAYER_ITEM}\s*)*"
FIELD_TYPES = ("timestamp", "integer", "float", "boolean", "string")
KEEP_COL_PATTERN = r"(?:[A-Za-z_][\w]*=)?[^=:\s][^=:]*(?::(?:" + "|".join(FIELD_TYPES) + "))?"
DEFAULT_MODEL = "minilm"  # the alias used when no model is named
GRID_DEFAULTS = {"model": (DEFAULT_MODEL,), "pooling": ("mean",)}  # what compare runs when not told


@dataclass(frozen=True)
class Flag:
    """How a field appears on the command line (``names``: its spellings, default ``--field-name``), and
    what values it takes: ``choices``, a range (``min``/``max`` inclusive, ``above`` exclusive) or a
    ``pattern`` (a regular expression the whole value must match)."""

    help: str
    names: tuple[str, ...] = ()
    choices: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    above: float | None = None
    pattern: str | None = None

    def spelling(self, name: str) -> str:
        return self.names[0] if self.names else f"--{name.replace('_', '-')}"

    def problem(self, name: str, value: Any, kind: type) -> str | None:
        """What is wrong with one value, in a sentence that names the option, or None."""
        option, got = self.spelling(name), f"(got {value!r})"
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            wanted = {int: "a whole number", float: "a number"}.get(kind, "text")
            return f"{option} takes {wanted} {got}."
        if self.choices and value not in self.choices:
            return f"Unknown {option} {value!r}: use one of {', '.join(self.choices)}."
        if self.pattern and not re.fullmatch(self.pattern, value):
            return f"{option} is not valid {got}: {self.help}"
        for bound, fails, words in (
            (self.min, lambda b: value < b, "at least"),
            (self.max, lambda b: value > b, "at most"),
            (self.above, lambda b: value <= b, "above"),
        ):
            if bound is not None and fails(bound):
                return f"{option} must be {words} {bound:g} {got}."
        return None

    def check(self, name: str, value: Any, kind: type) -> None:
        """The one validation of a value, whether it came from the command line, a file or Python."""
        for one in value if isinstance(value, tuple) else (value,):
            if one is not None and (problem := self.problem(name, one, kind)):
                raise EncajesError(problem)


def option(default: Any, help: str, *names: str, **limits: Any) -> Any:
    """A dataclass field that is also a command-line option."""
    return field(default=default, metadata={"flag": Flag(help, names, **limits)})


@functools.cache
def field_type(cls: type, name: str) -> tuple[type, bool]:
    """``int | None`` -> (int, False); ``tuple[int, ...]`` -> (int, True): a repeatable option."""
    hint = typing.get_type_hints(cls)[name]
    if isinstance(hint, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], True
    return hint, False


def check_fields(settings: Any) -> None:
    """Every option field of a settings object against its type, choices and range."""
    for f in fields(settings):
        if "flag" in f.metadata:
            f.metadata["flag"].check(f.name, getattr(settings, f.name), field_type(type(settings), f.name)[0])


@dataclass(frozen=True)
class EmbedSettings:
    """Everything that decides the vectors (plus batch size and device, which only decide the speed)."""

    model: str = option(
        DEFAULT_MODEL,
        "Alias (see `encajes models`), Hugging Face hub id (owner/name) or a local model folder.",
        "--model",
        "-m",
    )
    pooling: str | None = option(
        None,
        "Pooling: mean (over real tokens) or cls (token 0). Default: the model's own (mean).",
        "--pooling",
        choices=POOLINGS,
    )
    max_length: int = option(128, "Tokens per text; longer texts are cut and counted.", min=2)
    prefix: str | None = option(
        None, "Text put before every input, e.g. 'query: ' for e5 models. Default: the model's own."
    )
    dtype: str = option(
        "auto",
        "Compute precision. auto: fp32 on CPU, bf16 (fp16 on older GPUs) on CUDA.",
        choices=("auto", *DTYPES),
    )
    device: str = option("auto", "auto, cpu or cuda (cuda:1, ...).", pattern=r"auto|cpu|cuda(:\d+)?")
    batch_size: int | None = option(None, "Texts per batch. Default: 64 on CPU, 256 on GPU.", min=1)
    trust_remote_code: bool = option(False, "Allow a hub model to run its own Python code.")
    # padded tokens per batch; None: 1024 on CPU (keeps activations cache-sized), 64 x rows on GPU
    token_budget: int | None = None
    chunk_rows: int | None = option(
        None, "Rows per shard written to disk (4096): a killed run resumes from the last shard.", min=1
    )
    # Not an input of the vectors (they are the same either way): where they are kept.
    store: str = option(
        "auto",
        "pt: vectors inside embeddings.pt; npy: in a vectors.npy beside it that every stage reads block "
        "by block (for corpora beyond memory); auto: npy past 2 GiB of vectors (1.4M rows at 384-d).",
        choices=STORES,
    )
    revision: str | None = option(
        None, "Hub models: the commit, branch or tag to load. Default: what main points to now."
    )
    layers: str = option(
        "last",
        "Hidden layers to pool, all from one forward pass, each a run of its own: last (the default), "
        "all (every layer), or a list such as -2,6,last4,first-last (negative: from the end; last4: the "
        "mean of the last four layers' pooled vectors; first-last: of the first and last).",
        "--layers",
        pattern=LAYERS_PATTERN,
    )

    __post_init__ = check_fields


@dataclass(frozen=True)
class EngineSettings:
    """Who runs the encoder: this process (``local``) or a Ray Data actor pool (``ray``). Speed only."""

    name: str = option(
        "local",
        "ray: a Ray Data actor pool (RAY_ADDRESS's cluster, else a local one); same shards and vectors.",
        "--engine",
        choices=ENGINES,
    )
    workers: int = option(
        2,
        "--engine ray: actors, each with one model replica (one GPU each when the cluster has GPUs).",
        min=1,
    )
    cpus_per_worker: int = option(1, "--engine ray on CPU: threads per actor.", min=1)

    __post_init__ = check_fields


@dataclass(frozen=True)
class IndexSettings:
    kind: str = option(
        "auto",
        "auto: exact under 100k rows, else IVF with fast-scan PQ, re-ranked with the full vectors "
        "(or 8-bit copies) when they fit --memory-budget-gb.",
        choices=INDEX_KINDS,
    )
    memory_budget_gb: float = option(
        4.0, "Memory the index may use (decides how auto's candidates are re-ranked).", min=0
    )
    target_recall: float = option(
        0.95,
        "Approximate kinds: the search setting (nprobe, efSearch) is tuned to reach this recall@10.",
        min=0,
        max=1,
    )

    __post_init__ = check_fields


@dataclass(frozen=True)
class ProbeSettings:
    k: int | None = option(
        None,
        "Neighbours in the kNN vote. Default: chosen from 1-50 by inner cross-validation (up to 400 when "
        "50 wins).",
        "--k",
        min=1,
    )
    C: float | None = option(
        None,
        "Inverse regularisation of the logistic regression. Default: chosen from 0.25-64 by inner "
        "cross-validation on the training rows, the grid extended by factors of 4 (up to 65536, TF-IDF's "
        "to 4096; down to 1/1024) while an edge wins; --C 1.0 is the fixed protocol.",
        "--C",
        above=0,
    )
    cv_folds: int = option(3, "Folds of the inner cross-validation that chooses C and k.", min=2)
    max_iter: int = option(1000, "Logistic regression iterations.", min=1)
    include_val: bool = option(False, "Train the probes on train + val (default: train only).")
    seed: int = option(0, "Seed of the 80/20 split (corpora without splits), bootstrap and UMAP.")
    test_size: float = 0.2
    bootstrap: int = option(1000, "Resamples for the macro-F1 interval.", min=100)
    near_dup: float = option(
        0.95,
        "Cosine at or above which a test row's nearest training row counts as its near-duplicate twin; "
        "the probes are also scored on the test rows without one.",
        "--near-dup",
        min=0,
        max=1,
    )

    __post_init__ = check_fields


@dataclass(frozen=True)
class CurveSettings:
    """Learning curves: the probes refitted on stratified subsamples of the training rows."""

    train_sizes: str = option(
        "auto",
        "Training-set sizes of the learning curves, e.g. 160,800,4000. auto: six log-spaced sizes from "
        "8 rows per class to every training row.",
        "--train-sizes",
        pattern=r"\s*auto\s*|\s*\d+\s*(,\s*\d+\s*)*",
    )
    resamples: int = option(5, "Stratified subsamples drawn at each training size.", "--resamples", min=1)

    __post_init__ = check_fields


@dataclass(frozen=True)
class UmapSettings:
    n_neighbors: int = option(15, "UMAP n_neighbors.", min=2)
    min_dist: float = option(0.1, "UMAP min_dist.", min=0, max=1)
    seed: int = option(0, "UMAP random_state.")
    fit_rows: int = option(
        100_000,
        "Above this many rows, UMAP fits on a sample this size; the rest are placed by their nearest "
        "sample points.",
        "--umap-fit-rows",
        min=4,
    )
    map_labels: int = option(
        10,
        "Labels the maps colour, most frequent first (at most 20); the rest are one grey group.",
        min=1,
        max=20,
    )

    __post_init__ = check_fields


@dataclass(frozen=True)
class Columns:
    """Which input columns hold what. ``None`` means: use the default name if the file has it."""

    text: str = option("text", "Column with the tweet text.", "--text-col")
    label: str | None = option(None, "Column with the label (default: 'label' if present).", "--label-col")
    id: str | None = option(None, "Column with your row ids (default: 'id' if present).", "--id-col")
    split: str | None = option(
        None, "Column with train/val/test (default: 'split' if present).", "--split-col"
    )
    label_name: str | None = option(
        None,
        "Column naming each label, shown in reports and maps (default: 'emoji', 'label_name' or 'name' "
        "if present).",
        "--label-name-col",
    )
    label_names: str | None = option(
        None,
        "A CSV naming the labels (columns: label, and emoji, label_name or name), e.g. mapping.csv.",
        "--label-names",
    )
    label_from_emoji: str | None = option(
        None,
        "Label tweets by emoji (distant supervision): a number N (the N most frequent emojis) or a list "
        "('❤,😂,🔥'). Keeps tweets with exactly one of them, labels them by it, removes it from the text.",
        "--label-from-emoji",
        pattern=r"\s*\d+\s*|.*\S.*",
    )
    normalize: str = option(
        "none",
        "tweets: user mentions -> @user, links -> http (TweetEval's convention); none keeps texts as read.",
        "--normalize",
        choices=("none", "tweets"),
    )
    keep_col: tuple[str, ...] = option(
        (),
        "Keep another field in the corpus, typed, for filters and maps: a CSV column, or a dotted path into "
        "JSON/parquet records (user.followers_count); NEW=PATH names it, :TYPE sets its type (timestamp, "
        "integer, float, boolean, string; default: inferred from the first 1,000 values). Repeatable.",
        "--keep-col",
        pattern=KEEP_COL_PATTERN,
    )
    lenient_cols: bool = option(
        False,
        "Keep a row whose kept field does not parse, with that field missing (default: the row goes to "
        "rejects.csv with the reason).",
        "--lenient-cols",
    )

    __post_init__ = check_fields


@dataclass(frozen=True)
class CsvFormat:
    delimiter: str = option(",", "Field separator, e.g. ';' or $'\\t'.")
    encoding: str = option("utf-8", "File encoding, e.g. latin-1.")

    __post_init__ = check_fields


@dataclass(frozen=True)
class EmbedBenchSettings:
    """``encajes bench embed``: the same texts through encajes and sentence-transformers."""

    model: str = option(DEFAULT_MODEL, "Alias, hub id or folder.", "--model", "-m")
    dtype: str = option("fp32", "Precision of both implementations.", choices=DTYPES)
    their_dtype: str | None = option(
        None,
        "Precision of sentence-transformers, if not --dtype (e.g. ours bf16 vs their fp32).",
        choices=DTYPES,
    )
    device: str = option("auto", "auto, cpu or cuda.", pattern=r"auto|cpu|cuda(:\d+)?")
    max_length: int = option(128, "Tokens per text, both sides.", min=2)
    rounds: int = option(3, "A/B pairs, each in fresh processes.", min=1)
    batch_sizes: tuple[int, ...] = option(
        (),
        "Candidate batch sizes (repeat); each side runs with its fastest. Default: 32, 64, 128.",
        "--batch-size",
    )
    limit: int | None = option(None, "Only the first N texts.", min=1)

    __post_init__ = check_fields


@dataclass(frozen=True)
class ProbeBenchSettings:
    """``encajes bench probe``: the tuned probes against the fixed protocol on one run."""

    rounds: int = option(3, "Rounds of tuned, fixed, and tuned with scikit-learn's solver.", min=1)
    cv_folds: int = option(3, "Folds of the inner cross-validation.", min=2)
    seed: int = option(0, "Seed of the split and the folds.")

    __post_init__ = check_fields


@dataclass(frozen=True)
class IndexBenchSettings:
    """``encajes bench index``: every index kind on calibrated synthetic vectors."""

    n: int = option(100_000, "Vectors.", "--n", min=1000)
    dim: int = option(384, "Dimension.", min=8)
    queries: int = option(1000, "Held-out query vectors (not in the index).", min=10)
    memory_budget_gb: float = option(4.0, "Budget for auto.", min=0)
    kinds: tuple[str, ...] = option(
        (),
        "Kinds to build (repeatable). Default: all; what auto picks is always added.",
        "--kind",
        choices=INDEX_KINDS[1:],
    )
    target_recall: float = option(
        0.95, "Search settings are tuned to reach this recall@10 on 500 held-out queries.", min=0, max=1
    )

    __post_init__ = check_fields
