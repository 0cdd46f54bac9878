"""The ``encajes`` command line: parses arguments, calls the pipeline, prints the report it gets back
(as text, or as one JSON object with --json). Options come from ``pipeline.core.settings`` via
``pipeline.cli.options``; what a command does lives in the pipeline, what it prints in its report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from pipeline.cli.bench import bench
from pipeline.cli.options import (
    CONTEXT,
    announce,
    command,
    force_option,
    grid_option,
    grid_options,
    model_options,
    progress_option,
    resolved_layer,
    run_options,
    serve_layer_option,
    settings_from_options,
    settings_options,
    spec_from_options,
    workdir_option,
)
from pipeline.core.serve_settings import SearchSettings, ServeSettings
from pipeline.core.settings import (
    Columns,
    CsvFormat,
    EmbedSettings,
    EngineSettings,
    IndexSettings,
    ProbeSettings,
    UmapSettings,
)
from pipeline.core.stage_report import Printable


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="encajes")
def main() -> None:
    """encajes: tweet corpora -> transformer embeddings -> FAISS search.

    \b
    The stages chain through files in a workdir; a rerun skips what is fresh:
      encajes ingest data/sample_tweets.csv        # tweet files -> corpus.parquet (+ rejects.csv)
      encajes embed --model minilm --pooling mean  # -> runs/minilm__mean/embeddings.pt
      encajes index                                # -> exact FAISS index
      encajes search "qué calor hace hoy" -k 5     # nearest tweets
      encajes probe / plot                         # kNN + logistic probes, UMAP map
      encajes compare -m minilm -m ./beto --pooling mean --pooling cls   # report
      encajes run data/sample_tweets.csv           # all of the above with defaults
    """


@command(main)
@click.argument("csv_files", nargs=-1, required=True, metavar="FILES...", type=click.Path(dir_okay=False))
@workdir_option
@settings_options(Columns, CsvFormat)
@force_option("Ingest again even if unchanged, or replace a corpus made from other files.")
def ingest(csv_files: tuple[str, ...], workdir: str, force: bool, **kw: Any) -> Printable:
    """Read tweet files into WORKDIR/corpus.parquet; unusable rows go to WORKDIR/rejects.csv.

    Files may be CSV/TSV, JSON lines (.jsonl, .ndjson, also gzipped), a JSON array, a Twitter API v2
    page or parquet, told apart by content. In JSON a column may be a dotted path (user.lang); tweets'
    full_text, a retweet's retweeted_status.full_text and id_str are used without flags. Every row read
    is either kept or rejected with a reason, and the counts are printed. Without a split column, a file
    whose name holds train/val/dev/validation/test as a word (es_train.csv) gives its rows that split;
    SPLIT=FILE gives a split to a file with any name. Twitter v1.1/v2 records keep created_at (UTC),
    author, lang, retweet, reply and quote, typed, for --where filters and map colours; --keep-col keeps
    more. Kept fields never re-embed: embeddings depend on the texts only.

    \b
    Examples:
      encajes ingest train.csv test.csv --workdir work/emoji --label-col emoji
      encajes ingest train=es_trial.csv test=es_test.csv --workdir work/es
      encajes ingest dump.jsonl.gz -w work/dump --keep-col followers=user.followers_count:integer
    """
    from pipeline.stages.ingest.stage import ingest as run_ingest

    fmt = settings_from_options(CsvFormat, kw)
    return run_ingest(
        csv_files, workdir, settings_from_options(Columns, kw), fmt.delimiter, fmt.encoding, force=force
    )


@command(main)
@workdir_option
@settings_options(EmbedSettings, EngineSettings)
@force_option("Embed again even if the embeddings are fresh.")
@progress_option
def embed(workdir: str, force: bool, progress: bool, **kw: Any) -> Printable:
    """Embed every corpus row into WORKDIR/runs/<model>__<pooling>/embeddings.pt.

    Texts are sorted by length and padded per batch; vectors are pooled (mean ignores padding) and
    L2-normalised float32, saved with their row_ids (torch.load(path, weights_only=True); past 2 GiB a
    vectors.npy beside it). --layers: a run per hidden layer, all from one forward pass.

    \b
    Examples:
      encajes embed --model minilm --pooling cls
      encajes embed --model dccuchile/bert-base-spanish-wwm-cased --device cuda
      encajes embed --model ./my-finetuned-model --max-length 64 --json
      encajes embed --model e5-small --layers all,last4,first-last   # runs __layer1 .. __first-last
      RAY_ADDRESS=ray://head:10001 encajes embed --engine ray --workers 8
    """
    from pipeline.stages.embed.stage import embed_corpus

    settings, engine = settings_from_options(EmbedSettings, kw), settings_from_options(EngineSettings, kw)
    return embed_corpus(workdir, settings, force=force, progress=progress, engine=engine)


@command(main)
@workdir_option
@run_options
@settings_options(IndexSettings)
@force_option("Rebuild even if the index is fresh.")
def index(workdir: str, model: str, pooling: str | None, layer: str, force: bool, **kw: Any) -> Printable:
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
    from pipeline.stages.index.stage import index_run

    return index_run(workdir, model, pooling, settings_from_options(IndexSettings, kw), force, layer)


@command(main)
@click.argument("query", required=False)
@workdir_option
@run_options
@settings_options(SearchSettings)
@click.option("--id", "row", default=None, help="Find tweets like this corpus row (its row_id or id).")
@click.option(
    "--queries",
    "queries_file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A file with one query per line, all answered in one process.",
)
def search(query: str | None, workdir: str, model: str, pooling: str | None, layer: str, row: str | None,
           queries_file: str | None, **kw: Any) -> Printable:  # fmt: skip
    """Print the k nearest tweets to QUERY (or to a corpus row, or to each line of a file).

    Uses the run that `encajes embed` wrote for the same --model/--pooling/--layer, and embeds queries
    with the settings (hub commit, hidden layer) that run was embedded with. If the run has no index for
    its current embeddings, one is built first (exact below 100,000 rows, see `encajes index`).
    Near-duplicates (retweets, copies) are folded into the better hit: k counts distinct tweets.

    \b
    Examples:
      encajes search "qué calor hace hoy" -k 5
      encajes search "vacaciones" --where lang=es --where 'created_at>=2021-06-01' --where retweet=false
      encajes search --id 42 --dedup 0
      encajes search --positive 42 --positive 77 --negative 13
      encajes search --queries my_queries.txt --json > hits.json
    """
    from pipeline.search.command import search as run_search

    options = settings_from_options(SearchSettings, kw)
    return run_search(workdir, model, pooling, query=query, row=row, queries_file=queries_file, layer=layer,
                      options=options)  # fmt: skip


@command(main)
@workdir_option
@run_options
@settings_options(ProbeSettings)
@force_option("Refit even if the results are fresh.")
def probe(workdir: str, model: str, pooling: str | None, layer: str, force: bool, **kw: Any) -> Printable:
    """Score how well a run's embeddings predict the labels: logistic regression and kNN.

    Trained on the train split (plus val with --include-val), scored on test; a corpus without splits
    gets a stratified, seeded 80/20 split (and says so). C and k are chosen by stratified inner
    cross-validation on the training rows unless given; --C 1.0 --k 10 is the fixed protocol. Prints
    macro-F1 with a 95% bootstrap interval, accuracy, weighted F1 and how C and k were set; writes
    probe.json (per-class figures, confusion matrices, the CV scores), predictions.parquet and
    confusion.png in the run folder.

    \b
    Examples:
      encajes probe --model minilm --pooling cls
      encajes probe --model minilm --C 1.0 --k 10      # the fixed protocol
      encajes probe --layer 6                          # the run of hidden layer 6
    """
    from pipeline.stages.probe.stage import probe_run

    settings, layer = settings_from_options(ProbeSettings, kw), resolved_layer(workdir, model, pooling, layer)
    return probe_run(workdir, model, pooling, settings, force=force, layer=layer)


@command(main)
@workdir_option
@run_options
@settings_options(UmapSettings)
@force_option("Redraw even if the map is fresh.")
def plot(workdir: str, model: str, pooling: str | None, layer: str, force: bool, **kw: Any) -> Printable:
    """Draw a run's embeddings with UMAP (cosine, fixed seed), coloured by label.

    Writes umap.parquet (row_id, x, y, label), umap.png and umap.html (open it in a browser: hover a
    point to read the tweet, click a label to hide it) in the run folder. The kNN graph comes from
    FAISS; above --umap-fit-rows rows UMAP fits on a sample and the other rows are placed by their
    nearest sample points. Time and peak memory are reported.

    \b
    Example:
      encajes plot --model minilm --pooling mean --n-neighbors 30
    """
    from pipeline.stages.plot.stage import plot_run

    return plot_run(workdir, model, pooling, settings_from_options(UmapSettings, kw), force, layer)


@command(main)
@workdir_option
@grid_options
def compare(workdir: str, **kw: Any) -> Printable:
    """Compare models x poolings (x hidden layers) on one corpus and write a report.

    Each run is embedded, probed (logistic regression and kNN, C and k by inner CV) and mapped; the
    report (WORKDIR/report/report.html, .md, .json) tests every pair with a paired bootstrap (Holm),
    reads each run against the majority-class and TF-IDF baselines, and adds: macro-F1 by layer with
    inner CV's pick (--layers all), learning curves against TF-IDF (--train-sizes, --resamples), test
    rows with a near-duplicate in training (--near-dup), each run together with TF-IDF, and macro-F1
    against texts/s. Fresh stages are reused: adding a model computes only that model.

    \b
    Examples:
      encajes compare -m minilm -m e5-small --pooling mean --pooling cls
      encajes compare -m ./beto --pooling mean --layers all,last4,first-last
      encajes compare --config comparison.toml --train-sizes 200,1000,5000
    \b
    comparison.toml:
      models = ["minilm", "dccuchile/bert-base-spanish-wwm-cased"]
      poolings = ["mean", "cls"]
      [embed]
      layers = "-2,last,last4"
      [probe]
      k = 10
    """
    from pipeline.report.chain import compare_and_report

    spec = spec_from_options(kw)
    return compare_and_report(workdir, spec, kw["out"], kw["force"], kw["progress"], on_step=announce)


@command(main, "run")
@click.argument("csv_files", nargs=-1, required=True, metavar="FILES...", type=click.Path(dir_okay=False))
@workdir_option
@settings_options(Columns, CsvFormat)
@grid_options
def run_all(csv_files: tuple[str, ...], workdir: str, **kw: Any) -> Printable:
    """The whole chain on tweet file(s): ingest, embed, index, probe, plot and report.

    Same options as `ingest` and `compare`; reruns skip every fresh stage.

    \b
    Examples:
      encajes run data/sample_tweets.csv
      encajes run train.csv test.csv --workdir work/es --model minilm --pooling mean --pooling cls
    """
    from pipeline.report.chain import run_chain

    columns, fmt = settings_from_options(Columns, kw), settings_from_options(CsvFormat, kw)
    options = {"out": kw["out"], "force": kw["force"], "progress": kw["progress"], "on_step": announce}
    return run_chain(csv_files, workdir, spec_from_options(kw), columns, fmt, **options)


@command(main)
@click.argument("sentences", nargs=-1, required=True)
@model_options
@click.option(
    "--png",
    type=click.Path(dir_okay=False),
    default="similarity.png",
    show_default=True,
    help="Where to save the heatmap.",
)
def similarity(sentences: tuple[str, ...], model: str, pooling: str | None, png: str) -> Printable:
    """Cosine similarity between a few sentences: a printed matrix and a heatmap PNG.

    \b
    Example:
      encajes similarity "Me encanta la playa" "Adoro el mar" "Odio los lunes"
    """
    from pipeline.tools.similarity import sentence_similarity

    return sentence_similarity(list(sentences), EmbedSettings(model=model, pooling=pooling), Path(png))


@command(main)
@click.argument("text")
@click.option(
    "--model",
    "-m",
    default="dccuchile/bert-base-spanish-wwm-cased",
    show_default=True,
    help="A masked language model: hub id or local folder.",
)
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True, help="Words per [MASK].")
@settings_options(EmbedSettings, only=("trust_remote_code",))
def unmask(text: str, model: str, top_k: int, trust_remote_code: bool) -> Printable:
    """Fill each [MASK] in TEXT with a masked language model's most likely words.

    \b
    Example:
      encajes unmask "Hoy vamos a comer unos [MASK]." --model ./beto
    """
    from pipeline.tools.unmask import unmask_text

    return unmask_text(text, model, top_k, trust_remote_code)


@command(main)
@workdir_option
def status(workdir: str) -> Printable:
    """Show what in a workdir is fresh, stale (its inputs changed) or missing, stage by stage.

    \b
    Example:
      encajes status --workdir work/demo
    """
    from pipeline.artifacts.status import workdir_status

    return workdir_status(workdir)


@command(main)
def models() -> Printable:
    """List the model aliases: what each is, where its weights come from, and whether it is installed.

    Anything that is not an alias is a Hugging Face hub id (owner/name) or a local model folder.

    \b
    Example:
      encajes models --json
    """
    from pipeline.encoders.models import describe_models

    return describe_models()


@main.command(context_settings=CONTEXT)
@workdir_option
@grid_option(EmbedSettings, "model", "Serve this model's run(s); repeat for several. Default: every run.")
@grid_option(
    EmbedSettings, "pooling", "Serve runs with this pooling; repeat. Default: each --model's own pooling."
)
@serve_layer_option
@settings_options(ServeSettings)
def serve(workdir: str, models: tuple[str, ...], poolings: tuple[str, ...], **kw: Any) -> None:
    """Serve a workdir's runs over HTTP, encoder, index and corpus loaded once: a search page at /,
    POST /search, GET /similar/ROW_ID, POST /v1/embeddings and GET /v1/models (OpenAI's shape), GET
    /items, /map, /info, /health, /metrics and the API's documentation at /docs. Serves every embedded
    run unless --model/--pooling/--layer pick some; the first is the default of requests that name none.
    A run of another hidden layer than the last is named MODEL@layer6 (@last4, @first-last) in requests.

    \b
    Examples:
      encajes serve --workdir work/demo
      curl -s localhost:8000/search -H 'Content-Type: application/json' -d '{"query": "qué calor", "k": 5}'
    """
    from pipeline.core.errors import EncajesError
    from pipeline.serve.server import serve as run_server

    try:
        run_server(workdir, settings_from_options(ServeSettings, kw), models, poolings, kw["layers"])
    except EncajesError as error:
        raise click.ClickException(str(error)) from None


main.add_command(bench)


if __name__ == "__main__":
    sys.exit(main())
