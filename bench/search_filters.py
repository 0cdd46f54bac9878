"""Filtered search, near-duplicate folding and the ways to ask, timed against plain search in one run.

    .venv/bin/python bench/search_filters.py --tweets ../shared/data/tweeteval_emoji/test.csv \
        --queries-from ../shared/data/tweeteval_emoji/val.csv --workdir W [--rounds 300] [--before DIR]

1. Writes ``W.data/tweets.jsonl``: the CSV's tweets as Twitter v1.1 records, with a synthetic
   ``created_at`` (2018), author, lang, retweets and replies, and a ``bucket`` (0..999, uniform) whose
   filters keep exactly 10% and 0.1% of the rows. Ingests it into W (``--keep-col bucket:integer``).
   W should already hold a minilm run of the same texts (``encajes ingest test.csv -w W``, ``encajes
   embed -w W -m minilm``): the run stays fresh, since embeddings depend on the texts only.
2. Starts ``encajes serve`` on W and sends ``--rounds`` text queries per scenario, one client, the
   scenarios interleaved query by query: plain (dedup 0, as before), default (dedup 0.95), filters
   keeping 10% and 0.1%, and a realistic filter (lang, time, no retweets). Prints p50/p99 per scenario.
   ``--before DIR`` (a checkout of the code before, ``git worktree add DIR REV``) serves the same workdir
   from that code too: alone first (its plain queries, no other server running), then with its plain
   query in the rotation: today's figure, measured in the same run.
3. In process, on the same query vectors: search alone with and without folding (the cost of dedup
   without the encoder's noise), and filtered hits against exact search over the rows pandas keeps.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serve_load import ENCAJES, ENV, Client, quantile, start_server

LANGS = (["es"] * 45) + (["en"] * 35) + (["pt"] * 10) + (["fr"] * 5) + (["und"] * 5)
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SCENARIOS = {
    "plain (dedup 0)": {"dedup": 0},
    "default (dedup 0.95)": {},
    "filter keeping 10%": {"filter": {"bucket": {"lt": 100}}},
    "filter keeping 0.1%": {"filter": {"bucket": {"lt": 1}}},
    "lang=es, June on, no retweets": {
        "filter": {"lang": "es", "created_at": {"gte": "2018-06-01"}, "retweet": False}
    },
}


def v1_record(i: int, tweet_id: str, text: str, rng: np.random.Generator) -> dict:
    """One tweet as Twitter's v1.1 API gives it, with synthetic metadata."""
    stamp = np.datetime64("2018-01-01T00:00:00") + np.timedelta64(int(rng.integers(0, 365 * 86400)), "s")
    when = stamp.astype("datetime64[s]").item()
    created = f"{DAYS[when.weekday()]} {MONTHS[when.month - 1]} {when:%d %H:%M:%S} +0000 {when.year}"
    record = {
        "id_str": tweet_id,
        "full_text": text,
        "created_at": created,
        "lang": LANGS[int(rng.integers(0, len(LANGS)))],
        "user": {"screen_name": f"user{int(rng.zipf(1.6)) % 5000}"},
        "in_reply_to_status_id_str": str(10**17 + i) if rng.random() < 0.15 else None,
        "is_quote_status": bool(rng.random() < 0.05),
        "bucket": i % 1000,
    }
    if rng.random() < 0.1:
        record["retweeted_status"] = {"full_text": text}
    return record


def write_dump(tweets: Path, target: Path) -> int:
    rng = np.random.default_rng(0)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tweets.open(encoding="utf-8", newline="") as source, target.open("w", encoding="utf-8") as out:
        for i, row in enumerate(csv.DictReader(source)):
            out.write(json.dumps(v1_record(i, row["id"], row["text"], rng), ensure_ascii=False) + "\n")
    return i + 1


def run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, env=ENV)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


BEFORE = "plain, the code before (--before)"


def start_before(tree: Path, workdir: Path) -> tuple[subprocess.Popen, int]:
    """``encajes serve`` from another source tree (the code before a change) on the same workdir."""
    import bench.serve_load as load

    saved, here = load.ENV, Path.cwd()
    load.ENV = {**saved, "PYTHONPATH": str(tree.resolve())}
    os.chdir(tree)  # `python -m cli` finds the tree's cli.py first
    try:
        return start_server(str(workdir.resolve()), ["-m", "minilm"])
    finally:
        load.ENV = saved
        os.chdir(here)


def before_alone(tree: Path, workdir: Path, queries: list[str]) -> dict[str, float]:
    """Plain queries to the code before, with no other server running: its figure on its own."""
    server, port = start_before(tree, workdir)
    try:
        client, took = Client(port), []
        client.call("POST", "/search", json.dumps({"query": "warm up", "k": 10}).encode())
        for query in queries:
            started = time.perf_counter()
            status, _ = client.call("POST", "/search", json.dumps({"query": query, "k": 10}).encode())
            took.append((time.perf_counter() - started) * 1000)
            assert status == 200
    finally:
        server.terminate()
        server.wait()
    return {"p50_ms": round(quantile(took, 0.5), 2), "p99_ms": round(quantile(took, 0.99), 2), "n": len(took)}


def http_rounds(port: int, queries: list[str], rounds: int, before: int | None) -> dict[str, list[float]]:
    """Every query through every scenario, in a shuffled order per query (no scenario always follows
    another), the code before included when it is served."""
    client, rng = Client(port), np.random.default_rng(0)
    asks = [(name, client, extra) for name, extra in SCENARIOS.items()]
    if before:  # the same query, plain, from the code before: today's figure in the same minute
        asks.append((BEFORE, Client(before), {}))
    times: dict[str, list[float]] = {name: [] for name, _, _ in asks}
    for query in queries[:rounds]:
        for at in rng.permutation(len(asks)):
            name, server, extra = asks[at]
            body = json.dumps({"query": query, "k": 10, **extra}).encode()
            started = time.perf_counter()
            status, answer = server.call("POST", "/search", body)
            times[name].append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise SystemExit(f"{name}: HTTP {status} {answer[:300]!r}")
    return times


def in_process(workdir: Path, queries: list[str], rounds: int) -> dict[str, float]:
    """Search alone (query vectors encoded first): folding's cost, and filtered hits equal to exact search
    over the rows a pandas filter of the corpus keeps."""
    import pandas as pd

    from pipeline.search.searcher import Searcher

    searcher = Searcher.open(str(workdir), "minilm", "mean")
    vectors = searcher.query_vectors(queries[:rounds])
    out: dict[str, float] = {}
    for name, dedup in (("search ms, dedup 0", 0.0), ("search ms, dedup 0.95", 0.95)):
        ask, took = searcher.ask(10, dedup=dedup), []
        for _ in range(2):  # interleaving is per scenario here: both warm, median of all
            for vector in vectors:
                started = time.perf_counter()
                searcher.find(vector[None, :], ask)
                took.append((time.perf_counter() - started) * 1000)
        out[name] = statistics.median(took)
    corpus = pd.read_parquet(workdir / "corpus.parquet")
    stored = searcher.stored()
    assert np.array_equal(stored.row_ids, corpus["row_id"].to_numpy()), "vectors in corpus order"
    for name, extra in SCENARIOS.items():
        if "filter" not in extra:
            continue
        keep = searcher.rows.matching(searcher_conditions(extra["filter"]))
        pandas_keep = pandas_mask(corpus, name)
        assert np.array_equal(keep, pandas_keep), name
        kept = np.flatnonzero(pandas_keep)
        truth = np.argsort(-(vectors @ stored.vectors[kept].T), axis=1, kind="stable")[:, :10]
        found = [
            [h["row_id"] for h in hits]
            for hits in searcher.find(vectors, searcher.ask(10, extra["filter"], 0))
        ]
        same = np.mean(
            [f == corpus["row_id"].to_numpy()[kept][t].tolist() for f, t in zip(found, truth, strict=True)]
        )
        out[f"{name}: rows kept"] = int(pandas_keep.sum())
        out[f"{name}: hits equal exact search"] = float(same)
    return out


def searcher_conditions(mapping: dict) -> list:
    from pipeline.search.filters import conditions_from

    return conditions_from(mapping)


def pandas_mask(corpus, name: str) -> np.ndarray:
    import pandas as pd

    masks = {
        "filter keeping 10%": corpus["bucket"] < 100,
        "filter keeping 0.1%": corpus["bucket"] < 1,
        "lang=es, June on, no retweets": (corpus["lang"] == "es")
        & (corpus["created_at"] >= pd.Timestamp("2018-06-01", tz="UTC"))
        & (corpus["retweet"] == False),  # noqa: E712
    }
    return masks[name].fillna(False).to_numpy(dtype=bool)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tweets", type=Path, required=True)
    parser.add_argument("--queries-from", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--before", type=Path, default=None, help="The code before (git worktree add DIR REV)."
    )
    return parser.parse_args()


def prepare(args: argparse.Namespace) -> list[str]:
    """The dump written and ingested (the run must stay fresh); the queries."""
    dump = args.workdir.with_name(args.workdir.name + ".data") / "tweets.jsonl"
    rows = write_dump(args.tweets, dump)
    print(f"wrote {rows:,} v1.1 records to {dump}", file=sys.stderr)
    keep = ["--keep-col", "bucket:integer"]
    print(run([*ENCAJES, "ingest", str(dump), "-w", str(args.workdir), "--force", *keep]))
    embed = run([*ENCAJES, "embed", "-w", str(args.workdir), "-m", "minilm", "--no-progress"])
    assert "fresh" in embed, f"the run was embedded again after keeping fields:\n{embed}"
    with open(args.queries_from, encoding="utf-8", newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def main() -> None:
    args = arguments()
    queries = prepare(args)
    alone = before_alone(args.before, args.workdir, queries[: args.rounds]) if args.before else None
    server, port = start_server(str(args.workdir), ["-m", "minilm"])
    before = start_before(args.before, args.workdir) if args.before else None
    try:
        for warm in [port] + ([before[1]] if before else []):
            Client(warm).call("POST", "/search", json.dumps({"query": "warm up", "k": 10}).encode())
        times = http_rounds(port, queries, args.rounds, before[1] if before else None)
    finally:
        for process in [server] + ([before[0]] if before else []):
            process.terminate()
            process.wait()
    result = {
        name: {"p50_ms": round(quantile(t, 0.5), 2), "p99_ms": round(quantile(t, 0.99), 2), "n": len(t)}
        for name, t in times.items()
    }
    if alone is not None:  # the code before, its server the only one running
        result[BEFORE + ", alone"] = alone
    print(f"{'HTTP /search, 1 client, k=10':<34} {'p50 ms':>8} {'p99 ms':>8}")
    for name, figures in result.items():
        print(f"{name:<34} {figures['p50_ms']:>8.2f} {figures['p99_ms']:>8.2f}")
    measured = in_process(args.workdir, queries, args.rounds)
    for name, value in measured.items():
        print(f"{name:<44} {value:.3f}" if isinstance(value, float) else f"{name:<44} {value:,}")
    if args.out:
        args.out.write_text(json.dumps({"http": result, "in_process": measured}, indent=2))


if __name__ == "__main__":
    main()
