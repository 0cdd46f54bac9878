"""The ``encajes`` command line: parses arguments, calls a stage, prints what it did (or JSON with --json)."""

from __future__ import annotations

import functools
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipeline.errors import EncajesError

DEFAULT_WORKDIR = "work/demo"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def workdir_option(f: Callable) -> Callable:
    return click.option(
        "--workdir",
        "-w",
        default=DEFAULT_WORKDIR,
        show_default=True,
        type=click.Path(file_okay=False),
        help="Folder that holds the corpus and every artifact made from it.",
    )(f)


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead.")(f)


def run_options(f: Callable) -> Callable:
    """--model/--pooling, as given to `embed`, pick a run in every later command."""
    f = click.option(
        "--pooling",
        type=click.Choice(["mean", "cls"]),
        default=None,
        help="Pooling of the run: mean (over real tokens) or cls (token 0). Default: the model's own (mean).",
    )(f)
    return click.option(
        "--model",
        "-m",
        default="minilm",
        show_default=True,
        help="Alias (see README), Hugging Face hub id (owner/name) or a local model folder.",
    )(f)


def stage_command(f: Callable) -> Callable:
    """Turn EncajesError into a clear message (and a JSON error object under --json), exit status 1."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except EncajesError as error:
            if kwargs.get("as_json"):
                click.echo(json.dumps({"error": str(error)}, ensure_ascii=False))
            raise click.ClickException(str(error)) from None

    return wrapper


def emit_json(payload: dict[str, Any]) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False, default=str, indent=2))


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="encajes")
def main() -> None:
    """encajes: tweet corpora -> transformer embeddings -> FAISS search.

    \b
    The stages chain through files in a workdir; a rerun skips what is fresh:
      encajes ingest data/sample_tweets.csv        # CSV -> corpus.parquet (+ rejects.csv)
      encajes embed --model minilm --pooling mean  # -> runs/minilm__mean/embeddings.pt
      encajes index                                # -> exact FAISS index
      encajes search "qué calor hace hoy" -k 5     # nearest tweets
      encajes probe / plot                         # kNN + logistic probes, UMAP map
      encajes compare -m minilm -m ./beto --pooling mean --pooling cls   # report
      encajes run data/sample_tweets.csv           # all of the above with defaults
    """


@main.command(context_settings=CONTEXT)
@click.argument("csv_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@workdir_option
@click.option("--text-col", default="text", show_default=True, help="Column with the tweet text.")
@click.option("--label-col", default=None, help="Column with the label (default: 'label' if present).")
@click.option("--id-col", default=None, help="Column with your row ids (default: 'id' if present).")
@click.option("--split-col", default=None, help="Column with train/val/test (default: 'split' if present).")
@click.option("--delimiter", default=",", show_default=True, help="Field separator, e.g. ';' or $'\\t'.")
@click.option("--encoding", default="utf-8", show_default=True, help="File encoding, e.g. latin-1.")
@click.option("--force", is_flag=True, help="Ingest again even if these files were ingested unchanged.")
@json_option
@stage_command
def ingest(
    csv_files: tuple[str, ...],
    workdir: str,
    text_col: str,
    label_col: str | None,
    id_col: str | None,
    split_col: str | None,
    delimiter: str,
    encoding: str,
    force: bool,
    as_json: bool,
) -> None:
    """Read CSV file(s) into WORKDIR/corpus.parquet; unusable rows go to WORKDIR/rejects.csv.

    Every row read is either kept or rejected with a reason, and the counts are printed. Without a split
    column, a file named train/val/dev/validation/test gives its rows that split; SPLIT=FILE gives a
    split to a file with any name.

    \b
    Examples:
      encajes ingest train.csv test.csv --workdir work/emoji --label-col emoji
      encajes ingest train=es_trial.csv test=es_test.csv --workdir work/es
    """
    from pipeline.ingest import Columns
    from pipeline.ingest import ingest as run_ingest

    columns = Columns(text=text_col, label=label_col, id=id_col, split=split_col)
    report = run_ingest(csv_files, workdir, columns, delimiter=delimiter, encoding=encoding, force=force)
    if as_json:
        return emit_json(report.to_dict())
    state = "unchanged, kept" if report.skipped else "wrote"
    click.echo(f"{state} {report.corpus}")
    click.echo(
        f"rows read {report.rows_read} = kept {report.rows_kept} + rejected {report.rows_rejected}"
        + (f"  (rejects: {report.rejects})" if report.rows_rejected else "")
    )
    for reason, count in report.reject_reasons.items():
        click.echo(f"  rejected {count:>6}  {reason}")
    click.echo("splits: " + ", ".join(f"{k} {v}" for k, v in report.splits.items()))
    click.echo(f"labels: {len(report.labels)} distinct " + _top(report.labels))


@main.command(context_settings=CONTEXT)
@workdir_option
@run_options
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Texts per batch. Default: 64 on CPU, 256 on GPU.",
)
@click.option(
    "--max-length",
    type=click.IntRange(min=2),
    default=128,
    show_default=True,
    help="Tokens per text; longer texts are cut and counted.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda (cuda:1, ...).")
@click.option(
    "--dtype",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default="auto",
    show_default=True,
    help="Compute precision. auto: fp32 on CPU, bf16 (fp16 on older GPUs) on CUDA.",
)
@click.option(
    "--prefix",
    default=None,
    help="Text put before every input, e.g. 'query: ' for e5 models. Default: the model's own.",
)
@click.option("--trust-remote-code", is_flag=True, help="Allow a hub model to run its own Python code.")
@click.option(
    "--chunk-rows",
    type=click.IntRange(min=1),
    default=None,
    help="Rows per shard written to disk (4096): a killed run resumes from the last shard.",
)
@click.option(
    "--store",
    type=click.Choice(["auto", "pt", "npy"]),
    default="auto",
    show_default=True,
    help="pt: vectors inside embeddings.pt; npy: in a vectors.npy beside it that every stage reads block "
    "by block (for corpora beyond memory); auto: npy past 2 GiB of vectors (1.4M rows at 384-d).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="ray: a Ray Data actor pool (RAY_ADDRESS's cluster, else a local one); same shards and vectors.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="--engine ray: actors, each with one model replica (one GPU each when the cluster has GPUs).",
)
@click.option(
    "--cpus-per-worker",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="--engine ray on CPU: threads per actor.",
)
@click.option("--force", is_flag=True, help="Embed again even if the embeddings are fresh.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@json_option
@stage_command
def embed(
    workdir: str,
    model: str,
    pooling: str | None,
    batch_size: int | None,
    max_length: int,
    device: str,
    dtype: str,
    prefix: str | None,
    trust_remote_code: bool,
    chunk_rows: int | None,
    store: str,
    engine: str,
    workers: int,
    cpus_per_worker: int,
    force: bool,
    progress: bool,
    as_json: bool,
) -> None:
    """Embed every corpus row into WORKDIR/runs/<model>__<pooling>/embeddings.pt.

    Texts are sorted by length and padded per batch; vectors are pooled (mean ignores padding) and
    L2-normalised float32, saved with their row_ids. Load them with
    torch.load(path, weights_only=True); past 2 GiB of vectors the file holds the row_ids and points to a
    vectors.npy beside it (np.load(..., mmap_mode="r")).

    \b
    Examples:
      encajes embed --model minilm --pooling cls
      encajes embed --model dccuchile/bert-base-spanish-wwm-cased --device cuda
      encajes embed --model ./my-finetuned-model --max-length 64 --json
      RAY_ADDRESS=ray://head:10001 encajes embed --engine ray --workers 8
    """
    from pipeline.embed import EmbedSettings, EngineSettings, embed_corpus

    settings = EmbedSettings(
        model=model,
        pooling=pooling,
        max_length=max_length,
        prefix=prefix,
        dtype=dtype,
        device=device,
        batch_size=batch_size,
        trust_remote_code=trust_remote_code,
        chunk_rows=chunk_rows,
        store=store,
    )
    report = embed_corpus(
        workdir,
        settings,
        force=force,
        progress=progress,
        engine=EngineSettings(engine, workers, cpus_per_worker),
    )
    if as_json:
        return emit_json(report.to_dict())
    if report.skipped:
        click.echo(f"fresh, kept {report.embeddings} ({report.rows} x {report.dim}); --force to redo")
        return
    vectors = " + vectors.npy" if report.settings.get("store") == "npy" else ""
    click.echo(
        f"wrote {report.embeddings}{vectors} ({report.rows} x {report.dim}, {report.model}, {report.pooling})"
    )
    click.echo(
        f"{report.texts_per_second:,.0f} texts/s, {report.tokens_per_second:,.0f} tokens/s on "
        f"{report.settings['device']} {report.settings['compute_dtype']} (model load "
        f"{report.timings['load_model_s']:.1f}s, encode {report.timings['encode_s']:.1f}s)"
    )
    if report.resumed_shards:
        click.echo(f"resumed: {report.resumed_shards} shard(s) from an interrupted run were reused")
    if report.oom_splits:
        click.echo(f"note: out of GPU memory {report.oom_splits} time(s); those batches were halved")
    if report.truncated:
        click.echo(f"note: {report.truncated} texts were longer than --max-length {max_length} and were cut")


@main.command(context_settings=CONTEXT)
@workdir_option
@run_options
@click.option(
    "--kind",
    type=click.Choice(["auto", "exact", "hnsw", "ivf", "ivfpq"]),
    default="auto",
    show_default=True,
    help="auto: exact under 100k rows, else IVF with fast-scan PQ, re-ranked with the full vectors "
    "(or 8-bit copies) when they fit --memory-budget-gb.",
)
@click.option(
    "--memory-budget-gb",
    type=float,
    default=4.0,
    show_default=True,
    help="Memory the index may use (decides how auto's candidates are re-ranked).",
)
@click.option(
    "--target-recall",
    type=click.FloatRange(0, 1),
    default=0.95,
    show_default=True,
    help="Approximate kinds: the search setting (nprobe, efSearch) is tuned to reach this recall@10.",
)
@click.option("--force", is_flag=True, help="Rebuild even if the index is fresh.")
@json_option
@stage_command
def index(
    workdir: str,
    model: str,
    pooling: str | None,
    kind: str,
    memory_budget_gb: float,
    target_recall: float,
    force: bool,
    as_json: bool,
) -> None:
    """Build a FAISS inner-product (= cosine) index for one run: exact for small corpora, approximate
    for large ones.

    An approximate index gets the fastest search setting that reaches --target-recall on 500 corpus
    rows, and its recall@10 against exact search is then measured on 1,000 other rows (each row's match
    with itself left out) and stored with the index.

    \b
    Examples:
      encajes index --model minilm --pooling mean
      encajes index --kind hnsw --target-recall 0.99 --json
    """
    from pipeline.index import index_run

    report = index_run(workdir, model, pooling, force, kind, memory_budget_gb, target_recall)
    if as_json:
        return emit_json(report.to_dict())
    state = "fresh, kept" if report.skipped else f"built in {report.build_s:.2f}s:"
    click.echo(f"{state} {report.index} ({report.kind}, {report.vectors} x {report.dim})")
    click.echo(f"  why: {report.why}" if report.why else "")
    if report.recall:
        r = report.recall
        click.echo(
            f"  recall@10 vs exact {r['recall_at_k']:.3f} on {r['queries']:,} corpus rows (self left out), "
            f"{r['speedup_over_exact']:.1f}x the queries/s of exact search, with {report.search_params}"
        )
        if not r["reached_target"]:
            click.echo(f"  note: no setting reached recall {r['target']}; the most exact one is used")


@main.command(context_settings=CONTEXT)
@click.argument("query", required=False)
@workdir_option
@run_options
@click.option(
    "-k",
    "--top-k",
    "--k",
    "k",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Results per query.",
)
@click.option("--id", "row", default=None, help="Find tweets like this corpus row (its row_id or id).")
@click.option(
    "--queries",
    "queries_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A file with one query per line, all answered in one process.",
)
@json_option
@stage_command
def search(
    query: str | None,
    workdir: str,
    model: str,
    pooling: str | None,
    k: int,
    row: str | None,
    queries_file: str | None,
    as_json: bool,
) -> None:
    """Print the k nearest tweets to QUERY (or to a corpus row, or to each line of a file).

    Uses the run that `encajes embed` wrote for the same --model/--pooling; the exact index is built
    first if it is missing or older than the embeddings.

    \b
    Examples:
      encajes search "qué calor hace hoy" -k 5
      encajes search --id 42
      encajes search --queries my_queries.txt --json > hits.json
    """
    from pipeline.search import Searcher

    given = sum(x is not None for x in (query, row, queries_file))
    if given != 1:
        raise EncajesError("Give exactly one of: a QUERY text, --id ROW, or --queries FILE.")
    searcher = Searcher.open(workdir, model, pooling)
    if row is not None:
        hits = searcher.search_row(row, k)
    else:
        queries = [query] if query is not None else _read_queries(Path(queries_file))
        hits = searcher.search_texts(queries, k)
    if as_json:
        results = [
            {"query": q, "hits": group.drop(columns="query").to_dict(orient="records")}
            for q, group in hits.groupby("query", sort=False)
        ]
        return emit_json(
            {
                "stage": "search",
                "run": searcher.run.root.name,
                "k": k,
                "index_built": searcher.index_built,
                "results": results,
            }
        )
    width = shutil.get_terminal_size((120, 20)).columns
    for q, group in hits.groupby("query", sort=False):
        click.echo(click.style(f"query: {q}", bold=True))
        click.echo(f"{'rank':>4}  {'score':>6}  {'row_id':>7}  {'label':<8}  text")
        for hit in group.itertuples():
            text = " ".join(str(hit.text).split())
            line = f"{hit.rank:>4}  {hit.score:6.3f}  {hit.row_id:>7}  {hit.label or '-'!s:<8}  {text}"
            click.echo(line[: max(width, 60)])
        click.echo("")


def probe_options(f: Callable) -> Callable:
    for option in reversed(
        [
            click.option(
                "--k",
                "k",
                type=click.IntRange(min=1),
                default=10,
                show_default=True,
                help="Neighbours in the kNN vote.",
            ),
            click.option(
                "--C",
                "C",
                type=float,
                default=1.0,
                show_default=True,
                help="Inverse regularisation of the logistic regression.",
            ),
            click.option(
                "--max-iter",
                type=int,
                default=1000,
                show_default=True,
                help="Logistic regression iterations.",
            ),
            click.option(
                "--include-val", is_flag=True, help="Train the probes on train + val (default: train only)."
            ),
            click.option(
                "--bootstrap",
                type=click.IntRange(min=100),
                default=1000,
                show_default=True,
                help="Resamples for the macro-F1 interval.",
            ),
            click.option(
                "--seed",
                type=int,
                default=0,
                show_default=True,
                help="Seed of the 80/20 split (corpora without splits), bootstrap and UMAP.",
            ),
        ]
    ):
        f = option(f)
    return f


def umap_options(f: Callable) -> Callable:
    f = click.option(
        "--umap-fit-rows",
        type=click.IntRange(min=4),
        default=100_000,
        show_default=True,
        help="Above this many rows, UMAP fits on a sample this size; the rest are placed by their "
        "nearest sample points.",
    )(f)
    f = click.option("--min-dist", type=float, default=0.1, show_default=True, help="UMAP min_dist.")(f)
    return click.option(
        "--n-neighbors", type=click.IntRange(min=2), default=15, show_default=True, help="UMAP n_neighbors."
    )(f)


def _probe_settings(kw: dict[str, Any]) -> Any:
    from pipeline.probe import ProbeSettings

    return ProbeSettings(
        k=kw["k"],
        C=kw["C"],
        max_iter=kw["max_iter"],
        include_val=kw["include_val"],
        seed=kw["seed"],
        bootstrap=kw["bootstrap"],
    )


def _umap_settings(kw: dict[str, Any]) -> Any:
    from pipeline.projection import UmapSettings

    return UmapSettings(
        n_neighbors=kw["n_neighbors"], min_dist=kw["min_dist"], seed=kw["seed"], fit_rows=kw["umap_fit_rows"]
    )


@main.command(context_settings=CONTEXT)
@workdir_option
@run_options
@probe_options
@click.option("--force", is_flag=True, help="Refit even if the results are fresh.")
@json_option
@stage_command
def probe(workdir: str, model: str, pooling: str | None, force: bool, as_json: bool, **kw: Any) -> None:
    """Score how well a run's embeddings predict the labels: logistic regression and kNN.

    Trained on the train split (plus val with --include-val), scored on test; a corpus without splits
    gets a stratified, seeded 80/20 split. Prints macro-F1 with a 95% bootstrap interval, accuracy and
    weighted F1; writes probe.json (per-class figures, confusion matrices), predictions.parquet and
    confusion.png in the run folder.

    \b
    Example:
      encajes probe --model minilm --pooling cls --k 20
    """
    from pipeline.probe import probe_run

    report = probe_run(workdir, model, pooling, _probe_settings(kw), force=force)
    if as_json:
        return emit_json(report.to_dict())
    click.echo(f"{'fresh, kept' if report.skipped else 'wrote'} {report.probe}")
    click.echo(f"split: {report.split} ({report.train_rows:,} train / {report.test_rows:,} test rows)")
    for name, result in (("logistic", report.logistic), ("kNN", report.knn)):
        ci = result["macro_f1_ci"]
        click.echo(
            f"{name:>9}: macro-F1 {result['macro_f1']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]  "
            f"accuracy {result['accuracy']:.3f}  weighted-F1 {result['weighted_f1']:.3f}"
        )
    click.echo(f"confusion matrices: {report.confusion_png}")


@main.command(context_settings=CONTEXT)
@workdir_option
@run_options
@umap_options
@click.option("--seed", type=int, default=0, show_default=True, help="UMAP random_state.")
@click.option("--force", is_flag=True, help="Redraw even if the map is fresh.")
@json_option
@stage_command
def plot(workdir: str, model: str, pooling: str | None, force: bool, as_json: bool, **kw: Any) -> None:
    """Draw a run's embeddings with UMAP (cosine, fixed seed), coloured by label.

    Writes umap.parquet (row_id, x, y, label), umap.png and umap.html (open it in a browser: hover a
    point to read the tweet, click a label to hide it) in the run folder. The kNN graph comes from
    FAISS; above --umap-fit-rows rows UMAP fits on a sample and the other rows are placed by their
    nearest sample points. Time and peak memory are reported.

    \b
    Example:
      encajes plot --model minilm --pooling mean --n-neighbors 30
    """
    from pipeline.plot import plot_run

    report = plot_run(workdir, model, pooling, _umap_settings(kw), force=force)
    if as_json:
        return emit_json(report.to_dict())
    state = "fresh, kept" if report.skipped else f"drew {report.rows:,} points in {report.seconds:.1f}s:"
    click.echo(f"{state} {report.png}")
    click.echo(f"interactive: {report.html}")
    if not report.skipped:
        parts = ", ".join(
            f"{k.removesuffix('_s').replace('_', ' ')} {v:.1f}s" for k, v in report.timings.items()
        )
        sample = f"fitted on {report.fitted_rows:,} rows, " if report.fitted_rows < report.rows else ""
        after_fit = f" ({report.peak_rss_after_fit_mb:,.0f} MB after the fit)" if sample else ""
        click.echo(f"  UMAP: {sample}{parts}; peak memory {report.peak_rss_mb:,.0f} MB{after_fit}")


def _compare_and_report(workdir: str, spec: Any, out: str | None, force: bool, progress: bool) -> Any:
    from pipeline.compare import compare
    from pipeline.report import write_report

    def announce(step: str) -> None:
        click.echo(f"-> {step}", err=True)

    result = compare(workdir, spec, force=force, progress=progress, on_step=announce)
    write_report(result, Path(out) if out else Path(workdir) / "report")
    return result


def _print_comparison(result: Any) -> None:
    from pipeline.report import test_sentences

    table = result.table()
    click.echo(
        f"{'model':<28} {'pooling':<7} {'dim':>4}  {'LR macro-F1 [95% CI]':<24} {'kNN macro-F1 [95% CI]':<24}"
    )
    for _, row in table.iterrows():
        lr = f"{row.lr_macro_f1:.3f} [{row.lr_ci_low:.3f}, {row.lr_ci_high:.3f}]"
        knn = f"{row.knn_macro_f1:.3f} [{row.knn_ci_low:.3f}, {row.knn_ci_high:.3f}]"
        click.echo(f"{str(row.model)[-28:]:<28} {row.pooling:<7} {row.dim:>4}  {lr:<24} {knn:<24}")
    for sentence in test_sentences(result):
        click.echo(sentence.replace("**", ""))
    done = sum(not any(r.skipped.values()) for r in result.runs)
    click.echo(f"{len(result.runs)} runs ({done} computed, the rest reused) in {result.seconds:.1f}s")
    click.echo(f"report: {result.report['html']}  (and report.md, report.json)")


def _embed_overrides(
    max_length: int | None, batch_size: int | None, device: str | None, dtype: str | None, prefix: str | None
) -> dict[str, Any]:
    given = {
        "max_length": max_length,
        "batch_size": batch_size,
        "device": device,
        "dtype": dtype,
        "prefix": prefix,
    }
    return {key: value for key, value in given.items() if value is not None}


def grid_options(f: Callable) -> Callable:
    for option in reversed(
        [
            click.option(
                "--model",
                "-m",
                "models",
                multiple=True,
                help="Model to compare (repeat for several). Default: minilm.",
            ),
            click.option(
                "--pooling",
                "poolings",
                multiple=True,
                type=click.Choice(["mean", "cls"]),
                help="Pooling to compare (repeat for several). Default: mean.",
            ),
            click.option(
                "--config",
                type=click.Path(exists=True, dir_okay=False),
                default=None,
                help="TOML file with models, poolings and [embed]/[probe]/[umap] settings.",
            ),
            click.option(
                "--max-length", type=click.IntRange(min=2), default=None, help="Embed max length (128)."
            ),
            click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Embed batch size."),
            click.option("--device", default=None, help="auto, cpu or cuda."),
            click.option(
                "--dtype",
                type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
                default=None,
                help="Embed precision.",
            ),
            click.option("--prefix", default=None, help="Text put before every input."),
            click.option("--plots/--no-plots", default=True, show_default=True, help="Draw UMAP maps."),
            click.option(
                "--out",
                type=click.Path(file_okay=False),
                default=None,
                help="Report folder. Default: WORKDIR/report.",
            ),
            click.option("--force", is_flag=True, help="Redo every stage even if fresh."),
            click.option(
                "--progress/--no-progress", default=True, show_default=True, help="Show progress bars."
            ),
        ]
    ):
        f = option(f)
    return f


def _spec_from(kw: dict[str, Any]) -> Any:
    from pipeline.compare import CompareSpec, load_spec

    overrides: dict[str, Any] = {}
    if kw["models"]:
        overrides["models"] = tuple(kw["models"])
    if kw["poolings"]:
        overrides["poolings"] = tuple(kw["poolings"])
    embed = _embed_overrides(kw["max_length"], kw["batch_size"], kw["device"], kw["dtype"], kw["prefix"])
    probe_settings, umap_settings = _probe_settings(kw), _umap_settings(kw)
    if kw["config"]:
        spec = load_spec(Path(kw["config"]))
        return CompareSpec(
            **{
                **spec.__dict__,
                **overrides,
                "embed": {**spec.embed, **embed},
                "plots": kw["plots"] and spec.plots,
            }
        )
    return CompareSpec(
        **{"embed": embed, "probe": probe_settings, "umap": umap_settings, "plots": kw["plots"], **overrides}
    )


@main.command(context_settings=CONTEXT)
@workdir_option
@grid_options
@probe_options
@umap_options
@json_option
@stage_command
def compare(workdir: str, as_json: bool, **kw: Any) -> None:
    """Compare models x poolings on one corpus: embed, probe and plot each, then write a report.

    Every stage is reused when its inputs (corpus, model weights, pooling, max length, prefix, probe and
    UMAP settings) have not changed, so adding a model only computes that model. The report
    (WORKDIR/report/report.html, .md and .json) has one row per run with macro-F1 and its 95% interval,
    per-class F1, UMAP maps side by side, and a paired bootstrap test of the best run against the
    runner-up on the same test rows.

    \b
    Examples:
      encajes compare --model minilm --model ./beto --pooling mean --pooling cls
      encajes compare --config comparison.toml
    \b
    comparison.toml:
      models = ["minilm", "dccuchile/bert-base-spanish-wwm-cased"]
      poolings = ["mean", "cls"]
      [embed]
      max_length = 64
      [probe]
      k = 10
    """
    result = _compare_and_report(workdir, _spec_from(kw), kw["out"], kw["force"], kw["progress"])
    if as_json:
        return emit_json(
            json.loads(Path(result.report["json"]).read_text(encoding="utf-8")) | {"report": result.report}
        )
    _print_comparison(result)


@main.command("run", context_settings=CONTEXT)
@click.argument("csv_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@workdir_option
@click.option("--text-col", default="text", show_default=True, help="Column with the tweet text.")
@click.option("--label-col", default=None, help="Column with the label (default: 'label' if present).")
@grid_options
@probe_options
@umap_options
@json_option
@stage_command
def run_all(
    csv_files: tuple[str, ...], workdir: str, text_col: str, label_col: str | None, as_json: bool, **kw: Any
) -> None:
    """The whole chain on CSV file(s): ingest, embed, index, probe, plot and report.

    Same options as `compare`; reruns skip every fresh stage.

    \b
    Examples:
      encajes run data/sample_tweets.csv
      encajes run train.csv test.csv --workdir work/es --model minilm --pooling mean --pooling cls
    """
    from pipeline.index import index_run
    from pipeline.ingest import Columns
    from pipeline.ingest import ingest as run_ingest

    ingested = run_ingest(csv_files, workdir, Columns(text=text_col, label=label_col), force=kw["force"])
    if not as_json:
        click.echo(
            f"ingest: rows read {ingested.rows_read} = kept {ingested.rows_kept} + rejected "
            f"{ingested.rows_rejected} -> {ingested.corpus}"
        )
    result = _compare_and_report(workdir, _spec_from(kw), kw["out"], kw["force"], kw["progress"])
    indexes = [index_run(workdir, r.model, r.pooling).to_dict() for r in result.runs]
    if as_json:
        return emit_json(
            {
                "ingest": ingested.to_dict(),
                "indexes": indexes,
                "report": result.report,
                **json.loads(Path(result.report["json"]).read_text(encoding="utf-8")),
            }
        )
    _print_comparison(result)
    click.echo(f'search it: encajes search --workdir {workdir} "your text"')


@main.command(context_settings=CONTEXT)
@click.argument("sentences", nargs=-1, required=True)
@run_options
@click.option(
    "--png",
    type=click.Path(dir_okay=False),
    default="similarity.png",
    show_default=True,
    help="Where to save the heatmap.",
)
@json_option
@stage_command
def similarity(sentences: tuple[str, ...], model: str, pooling: str | None, png: str, as_json: bool) -> None:
    """Cosine similarity between a few sentences: a printed matrix and a heatmap PNG.

    \b
    Example:
      encajes similarity "Me encanta la playa" "Adoro el mar" "Odio los lunes"
    """
    from pipeline.embed import EmbedSettings
    from pipeline.similarity import sentence_similarity

    matrix, title = sentence_similarity(
        list(sentences), EmbedSettings(model=model, pooling=pooling), Path(png)
    )
    if as_json:
        return emit_json(
            {
                "model": title,
                "sentences": list(sentences),
                "matrix": matrix.round(4).tolist(),
                "png": str(Path(png).resolve()),
            }
        )
    click.echo(f"{title}: cosine similarity")
    for i, sentence in enumerate(sentences):
        row = "  ".join(f"{value:5.2f}" for value in matrix[i])
        click.echo(f"{i + 1:>2}. {row}   {sentence[:60]}")
    click.echo(f"heatmap: {Path(png).resolve()}")


@main.command(context_settings=CONTEXT)
@click.argument("text")
@click.option(
    "--model",
    "-m",
    default="dccuchile/bert-base-spanish-wwm-cased",
    show_default=True,
    help="A masked language model: hub id or local folder.",
)
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True, help="Words per [MASK].")
@click.option("--trust-remote-code", is_flag=True, help="Allow a hub model to run its own Python code.")
@json_option
@stage_command
def unmask(text: str, model: str, top_k: int, trust_remote_code: bool, as_json: bool) -> None:
    """Fill each [MASK] in TEXT with a masked language model's most likely words.

    \b
    Example:
      encajes unmask "Hoy vamos a comer unos [MASK]." --model ./beto
    """
    from dataclasses import asdict

    from pipeline.unmask import unmask as fill

    fillings = fill(text, model, top_k, trust_remote_code)
    if as_json:
        return emit_json({"text": text, "model": model, "fillings": [asdict(f) for f in fillings]})
    for f in fillings:
        click.echo(f"[MASK {f.mask + 1}] {f.rank}. {f.token:<15} {f.score:6.3f}   {f.sequence}")


@main.command(context_settings=CONTEXT)
@workdir_option
@json_option
@stage_command
def status(workdir: str, as_json: bool) -> None:
    """Show what in a workdir is fresh, stale (its inputs changed) or missing, stage by stage.

    \b
    Example:
      encajes status --workdir work/demo
    """
    from pipeline.status import STAGES, workdir_status

    result = workdir_status(workdir)
    if as_json:
        return emit_json(result)
    colours = {"fresh": "green", "stale": "yellow", "missing": "red"}

    def show(name: str, state: dict[str, str]) -> None:
        label = click.style(f"{state['state']:<8}", fg=colours[state["state"]])
        click.echo(f"  {name:<10} {label} {state['why']}")

    click.echo(result["workdir"])
    show("ingest", result["ingest"])
    for run, stages in result["runs"].items():
        click.echo(run)
        for stage in STAGES:
            show(stage, stages[stage])


@main.command(context_settings=CONTEXT)
@json_option
@stage_command
def models(as_json: bool) -> None:
    """List the model aliases: what each is, where its weights come from, and whether it is installed.

    Anything that is not an alias is a Hugging Face hub id (owner/name) or a local model folder.

    \b
    Example:
      encajes models --json
    """
    from pipeline.models import describe_models

    rows = describe_models()
    if as_json:
        return emit_json({"models": rows})
    for row in rows:
        state = "installed" if row["installed"] else "NOT installed"
        click.echo(click.style(f"{row['alias']}", bold=True) + f"  = {row['model_id']}  ({state})")
        click.echo(
            f"    {row['language']}; {row['layers']} layers, {row['dim']}-d; pooling {row['pooling']}"
            + (f", prefix {row['prefix']!r}" if row["prefix"] else "")
        )
        click.echo(f"    weights: {row['weights_from']}")
        click.echo(f"    where:   {row['location']}")
    click.echo("Any other --model is a Hugging Face hub id (owner/name) or a local folder.")


@main.group(context_settings=CONTEXT)
def bench() -> None:
    """Benchmarks that compare two things in one run and report the ratio."""


@bench.command("embed", context_settings=CONTEXT)
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "-m", default="minilm", show_default=True, help="Alias, hub id or folder.")
@click.option(
    "--dtype",
    type=click.Choice(["fp32", "bf16", "fp16"]),
    default="fp32",
    show_default=True,
    help="Precision of both implementations.",
)
@click.option(
    "--their-dtype",
    type=click.Choice(["fp32", "bf16", "fp16"]),
    default=None,
    help="Precision of sentence-transformers, if not --dtype (e.g. ours bf16 vs their fp32).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--max-length", type=int, default=128, show_default=True, help="Tokens per text, both sides.")
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="A/B pairs, each in fresh processes.",
)
@click.option(
    "--batch-size",
    "batch_sizes",
    type=int,
    multiple=True,
    help="Candidate batch sizes (repeat); each side runs with its fastest. Default: 32, 64, 128.",
)
@click.option("--limit", type=int, default=None, help="Only the first N texts.")
@json_option
@stage_command
def bench_embed(
    csv_file: str,
    model: str,
    dtype: str,
    their_dtype: str | None,
    device: str,
    max_length: int,
    rounds: int,
    batch_sizes: tuple[int, ...],
    limit: int | None,
    as_json: bool,
) -> None:
    """Embed CSV_FILE's texts with encajes and with sentence-transformers' encode, A B A B.

    Same model, device and precision on both sides, each with its best batch size (swept on the first
    1,000 texts). Prints texts/s and tokens/s per run, peak RSS, the ratio ours/theirs per pair and its
    median, the minimum per-row cosine between the two outputs, and MFU: model FLOP/s over a matmul
    peak measured on the same device at the same precision.

    \b
    Example:
      encajes bench embed ../shared/data/tweeteval_emoji/val.csv --dtype bf16 --json
    """
    from pipeline.benchmark import compare_throughput

    opts = {
        "csv": csv_file,
        "model": model,
        "dtype": dtype,
        "their_dtype": their_dtype,
        "device": device,
        "max_length": max_length,
        "limit": limit,
    }
    say = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    result = compare_throughput(opts, rounds=rounds, batch_sizes=list(batch_sizes) or None, progress=say)
    if as_json:
        return emit_json(result)
    ours, theirs = result["encajes"], result["sentence-transformers"]
    click.echo(
        f"{result['model']} on {result['device']}: {result['texts']:,} texts, {result['tokens']:,} tokens"
    )
    for name, side in (("encajes", ours), ("sentence-transformers", theirs)):
        click.echo(
            f"  {name:<22} {side['dtype']:<5} batch {side['batch_size']:>4}  "
            f"{side['median_texts_per_s']:>8,.1f} texts/s  {side['median_tokens_per_s']:>10,.0f} tokens/s  "
            f"peak RSS {side['peak_rss_mb']:,.0f} MB  "
            f"MFU {side['mfu']:.1%} of {side['matmul_peak_gflops']:,.0f} GFLOP/s matmul peak"
        )
    click.echo(
        f"  ratio ours/theirs per pair {result['ratio_per_pair']}, median {result['median_ratio']:.2f}x"
    )
    click.echo(f"  min cosine between the two outputs {result['min_cosine']:.6f}")


@bench.command("index", context_settings=CONTEXT)
@click.option("--n", "n", type=click.IntRange(min=1000), default=100_000, show_default=True, help="Vectors.")
@click.option("--dim", type=click.IntRange(min=8), default=384, show_default=True, help="Dimension.")
@click.option(
    "--queries",
    type=click.IntRange(min=10),
    default=1000,
    show_default=True,
    help="Held-out query vectors (not in the index).",
)
@click.option("--memory-budget-gb", type=float, default=4.0, show_default=True, help="Budget for auto.")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(["exact", "hnsw", "ivf", "ivfpq"]),
    help="Kinds to build (repeatable). Default: all; what auto picks is always added.",
)
@click.option(
    "--target-recall",
    type=click.FloatRange(0, 1),
    default=0.95,
    show_default=True,
    help="Search settings are tuned to reach this recall@10 on 500 held-out queries.",
)
@json_option
@stage_command
def bench_index(
    n: int,
    dim: int,
    queries: int,
    memory_budget_gb: float,
    kinds: tuple[str, ...],
    target_recall: float,
    as_json: bool,
) -> None:
    """Build index kinds on synthetic clustered unit vectors and compare them with exact search.

    Each kind's search setting (nprobe, efSearch) is tuned to --target-recall on 500 held-out queries;
    then build time, size, queries/s, the speed-up over exact search and recall@10 against it are
    measured on --queries other held-out queries. The vectors are calibrated to be as hard to search as
    real tweet embeddings (see eval/check_synthetic_vectors.py).

    \b
    Example:
      encajes bench index --n 1000000 --dim 384 --kind exact --kind ivfpq --json
    """
    from indexes.approximate import bench_indexes

    result = bench_indexes(
        n,
        dim,
        queries,
        memory_budget_bytes=memory_budget_gb * 1e9,
        kinds=kinds or ("exact", "hnsw", "ivf", "ivfpq"),
        target_recall=target_recall,
        log=None if as_json else lambda line: click.echo(line, err=True),
    )
    if as_json:
        return emit_json(result)
    click.echo(f"{n:,} x {dim} synthetic vectors, {queries:,} held-out queries")
    for kind, r in result["kinds"].items():
        click.echo(
            f"  {kind:<6} build {r['build_s']:>8.1f}s  {r['bytes'] / 1e6:>8.1f} MB  "
            f"{r['queries_per_s']:>10,.0f} q/s  {r['speedup_over_exact']:>6.1f}x exact  "
            f"recall@10 {r['recall_at_k']:.3f}  {r['search_params']}"
        )
    click.echo(f"  auto -> {result['auto']['kind']}: {result['auto']['why']}")


def _read_queries(path: Path) -> list[str]:
    queries = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not queries:
        raise EncajesError(f"{path}: no queries (one per line).")
    return queries


def _top(counts: dict[str, int], n: int = 6) -> str:
    items = list(counts.items())[:n]
    more = ", ..." if len(counts) > n else ""
    return "(" + ", ".join(f"{k} {v}" for k, v in items) + more + ")"


if __name__ == "__main__":
    sys.exit(main())
