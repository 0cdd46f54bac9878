"""``encajes bench``: benchmarks that compare two things in one run and report the ratio."""

from __future__ import annotations

import functools
from typing import Any

import click

from pipeline.cli.options import (
    CONTEXT,
    command,
    run_options,
    settings_from_options,
    settings_options,
    workdir_option,
)
from pipeline.core.settings import EmbedBenchSettings, IndexBenchSettings, ProbeBenchSettings
from pipeline.core.stage_report import Printable


@click.group(context_settings=CONTEXT)
def bench() -> None:
    """Benchmarks that compare two things in one run and report the ratio."""


@command(bench, "embed")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@settings_options(EmbedBenchSettings)
def bench_embed(csv_file: str, **kw: Any) -> Printable:
    """Embed CSV_FILE's texts with encajes and with sentence-transformers' encode, A B A B.

    Same model, device and precision on both sides, each with its best batch size (swept on the first
    1,000 texts). Prints texts/s and tokens/s per run, peak RSS, the ratio ours/theirs per pair and its
    median, the minimum per-row cosine between the two outputs, and MFU: model FLOP/s over a matmul
    peak measured on the same device at the same precision.

    \b
    Example:
      encajes bench embed ../shared/data/tweeteval_emoji/val.csv --dtype bf16 --json
    """
    from pipeline.tools.bench.embed import bench_embed as run_bench

    return run_bench(
        csv_file, settings_from_options(EmbedBenchSettings, kw), log=functools.partial(click.echo, err=True)
    )


@command(bench, "index")
@settings_options(IndexBenchSettings)
def bench_index(**kw: Any) -> Printable:
    """Build index kinds on synthetic clustered unit vectors and compare them with exact search.

    Each kind's search setting (nprobe, efSearch) is tuned to --target-recall on 500 held-out queries;
    then build time, size, queries/s, the speed-up over exact search and recall@10 against it are
    measured on --queries other held-out queries. The vectors are calibrated to be as hard to search as
    real tweet embeddings (see eval/check_synthetic_vectors.py).

    \b
    Example:
      encajes bench index --n 1000000 --dim 384 --kind exact --kind ivfpq --json
    """
    from pipeline.tools.bench.index import bench_index as run_bench

    return run_bench(
        settings_from_options(IndexBenchSettings, kw), log=functools.partial(click.echo, err=True)
    )


@command(bench, "probe")
@workdir_option
@run_options
@settings_options(ProbeBenchSettings)
def bench_probe(workdir: str, model: str, pooling: str | None, **kw: Any) -> Printable:
    """Time the probes' fits on one run: tuned C and k, the fixed protocol, and the tuned search with
    scikit-learn's solver, in rounds in one process, each first in turn.

    Prints each variant's median seconds, test macro-F1 and chosen C and k, and the ratios tuned/fixed
    and scikit-learn/ours per round with their median. Needs an embedded, labelled run.

    \b
    Example:
      encajes bench probe -w work/semeval -m minilm --pooling mean --rounds 3 --json
    """
    from pipeline.tools.bench.probe import bench_probe as run_bench

    settings = settings_from_options(ProbeBenchSettings, kw)
    return run_bench(workdir, model, pooling, settings, log=functools.partial(click.echo, err=True))
