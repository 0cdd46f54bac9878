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
    column, a file named train/val/dev/validation/test gives its rows that split.

    \b
    Example:
      encajes ingest train.csv test.csv --workdir work/emoji --label-col emoji
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
    force: bool,
    progress: bool,
    as_json: bool,
) -> None:
    """Embed every corpus row into WORKDIR/runs/<model>__<pooling>/embeddings.pt.

    Texts are sorted by length and padded per batch; vectors are pooled (mean ignores padding) and
    L2-normalised float32, saved with their row_ids. Load them with
    torch.load(path, weights_only=True).

    \b
    Examples:
      encajes embed --model minilm --pooling cls
      encajes embed --model dccuchile/bert-base-spanish-wwm-cased --device cuda
      encajes embed --model ./my-finetuned-model --max-length 64 --json
    """
    from pipeline.embed import EmbedSettings, embed_corpus

    settings = EmbedSettings(
        model=model,
        pooling=pooling,
        max_length=max_length,
        prefix=prefix,
        dtype=dtype,
        device=device,
        batch_size=batch_size,
        trust_remote_code=trust_remote_code,
    )
    report = embed_corpus(workdir, settings, force=force, progress=progress)
    if as_json:
        return emit_json(report.to_dict())
    if report.skipped:
        click.echo(f"fresh, kept {report.embeddings} ({report.rows} x {report.dim}); --force to redo")
        return
    click.echo(f"wrote {report.embeddings} ({report.rows} x {report.dim}, {report.model}, {report.pooling})")
    click.echo(
        f"{report.texts_per_second:,.0f} texts/s, {report.tokens_per_second:,.0f} tokens/s on "
        f"{report.settings['device']} {report.settings['compute_dtype']} (model load "
        f"{report.timings['load_model_s']:.1f}s, encode {report.timings['encode_s']:.1f}s)"
    )
    if report.truncated:
        click.echo(f"note: {report.truncated} texts were longer than --max-length {max_length} and were cut")


@main.command(context_settings=CONTEXT)
@workdir_option
@run_options
@click.option("--force", is_flag=True, help="Rebuild even if the index is fresh.")
@json_option
@stage_command
def index(workdir: str, model: str, pooling: str | None, force: bool, as_json: bool) -> None:
    """Build an exact FAISS inner-product (= cosine) index for one run.

    \b
    Example:
      encajes index --model minilm --pooling mean
    """
    from pipeline.index import index_run

    report = index_run(workdir, model, pooling, force=force)
    if as_json:
        return emit_json(report.to_dict())
    state = "fresh, kept" if report.skipped else f"built in {report.build_s:.2f}s:"
    click.echo(f"{state} {report.index} ({report.kind}, {report.vectors} x {report.dim})")


@main.command(context_settings=CONTEXT)
@click.argument("query", required=False)
@workdir_option
@run_options
@click.option("-k", "k", type=click.IntRange(min=1), default=10, show_default=True, help="Results per query.")
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
