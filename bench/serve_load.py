"""Check and load test of ``encajes serve``: its routes and shapes (``/v1/embeddings`` against the stored
embeddings), then latency and throughput of text search with 1 and N concurrent clients,
``/v1/embeddings`` against ``encajes embed`` on the same texts, 1,000 malformed requests, and a cold
``encajes search`` in a new process for comparison. Loopback only; every scenario is bounded in count.

    .venv/bin/python bench/serve_load.py --workdir W [--queries-from ../shared/data/tweeteval_emoji/val.csv]

W must hold an embedded run (e.g. ``encajes ingest ../shared/data/tweeteval_emoji/test.csv`` then
``encajes embed --model minilm``). Queries are drawn from another file of the same corpus. The server and
the clients share this machine's cores, as a user's would. Prints a table and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ENCAJES = [sys.executable, "-m", "cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


@dataclass
class Load:
    """One scenario's figures: latencies in ms, throughput, errors."""

    name: str
    clients: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    per_second: float  # requests/s, or texts/s for embeddings


class Client:
    """One keep-alive HTTP/1.1 connection with TCP_NODELAY (as curl, httpx and requests use): without it
    Python's http.client sends headers and body in two packets and the body waits ~40 ms for an ACK."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.connection.connect()
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.connection.request(method, path, body, headers)
        response = self.connection.getresponse()
        return response.status, response.read()


def start_server(workdir: str, extra: list[str]) -> tuple[subprocess.Popen, int]:
    command = [*ENCAJES, "serve", "--workdir", workdir, "--port", "0", *extra]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=ENV)
    assert server.stderr is not None
    for line in server.stderr:
        print("   server:", line.rstrip(), file=sys.stderr)
        if match := re.search(r"serving on http://127\.0\.0\.1:(\d+)", line):
            threading.Thread(target=server.stderr.read, daemon=True).start()  # keep draining
            port = int(match.group(1))
            assert Client(port).call("GET", "/health")[0] == 200
            return server, port
    raise SystemExit(f"the server stopped before serving (exit {server.wait()})")


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def drive(port: int, name: str, bodies: list[tuple[str, str, bytes | None]], clients: int,
          texts_per_request: int = 1) -> Load:  # fmt: skip
    """Send ``bodies`` (method, path, body) from ``clients`` threads, each request after the last."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker(mine: list[tuple[str, str, bytes | None]]) -> None:
        client = Client(port)
        for method, path, body in mine:
            started = time.perf_counter()
            status, _ = client.call(method, path, body)
            took = time.perf_counter() - started
            with lock:
                latencies.append(took)
                errors[0] += status != 200

    threads = [threading.Thread(target=worker, args=(bodies[i::clients],)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    ms = [x * 1000 for x in latencies]
    return Load(name, clients, len(ms), errors[0], round(seconds, 3), round(quantile(ms, 0.5), 2),
                round(quantile(ms, 0.95), 2), round(quantile(ms, 0.99), 2),
                round(len(ms) * texts_per_request / seconds, 1))  # fmt: skip


def search_bodies(queries: list[str], k: int) -> list[tuple[str, str, bytes | None]]:
    return [("POST", "/search", json.dumps({"query": q, "k": k}).encode()) for q in queries]


def embed_with_cli(texts: list[str], model: str) -> float:
    """texts/s of ``encajes embed`` on these texts (its encode time, model load excluded)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "texts.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text"])
            writer.writerows([t] for t in texts)
        run = lambda *args: subprocess.run([*ENCAJES, *args], capture_output=True, text=True, env=ENV)  # noqa: E731
        run("ingest", str(path), "--workdir", f"{folder}/w")
        done = run("embed", "--workdir", f"{folder}/w", "--model", model, "--no-progress", "--json")
        report = json.loads(done.stdout)
        return report["rows"] / report["timings"]["encode_s"]


MALFORMED: list[tuple[str, str, bytes | None]] = [
    ("POST", "/search", b'{"query": "hola", "k": '),
    ("POST", "/search", b'{"query": ""}'),
    ("POST", "/search", b'{"query": "   "}'),
    ("POST", "/search", b'{"query": "hola", "k": 0}'),
    ("POST", "/search", b'{"query": "hola", "k": 100000}'),
    ("POST", "/search", b'{"query": 7}'),
    ("POST", "/search", b'{"querry": "hola"}'),
    ("POST", "/search", json.dumps({"query": ["hola"] * 10_000}).encode()),
    ("POST", "/search", json.dumps({"query": "x" * 100_000}).encode()),
    ("POST", "/v1/embeddings", b'{"input": []}'),
    ("POST", "/v1/embeddings", b"\xff\xfe not json"),
    ("GET", "/similar/987654321", None),
    ("GET", "/similar/abc", None),
    ("GET", "/items?row_ids=1,,x", None),
]


def server_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def malformed(port: int, pid: int, count: int) -> dict[str, object]:
    client, statuses = Client(port), {}
    before = server_rss_mb(pid)
    for i in range(count):
        method, path, body = MALFORMED[i % len(MALFORMED)]
        try:
            status, _ = client.call(method, path, body)
        except (http.client.HTTPException, OSError):
            status, client = 0, Client(port)  # a dropped connection counts as a failure
        statuses[status] = statuses.get(status, 0) + 1
    alive = Client(port).call("GET", "/health")[0] == 200
    all_4xx = all(400 <= s < 500 for s in statuses)
    return {"requests": count, "statuses": statuses, "all_4xx": all_4xx, "alive_after": alive,
            "rss_mb_before": round(before, 1), "rss_mb_after": round(server_rss_mb(pid), 1)}  # fmt: skip


def cold_search(workdir: str, model: str, query: str, runs: int) -> list[float]:
    """Wall seconds of ``encajes search`` in new processes (one unmeasured run first: a model's first
    query prepares its fast query encoder, once)."""
    command = ["encajes", "search", "--workdir", workdir, "--model", model, query, "-k", "10"]
    command[0] = str(Path(sys.executable).with_name("encajes"))
    subprocess.run(command, capture_output=True, env=ENV, check=True)
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, env=ENV, check=True)
        walls.append(round(time.perf_counter() - started, 3))
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--queries-from", default="../shared/data/tweeteval_emoji/val.csv")
    parser.add_argument("--single", type=int, default=300, help="Sequential queries of one client.")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--concurrent", type=int, default=800, help="Queries spread over --clients.")
    parser.add_argument("--embed-requests", type=int, default=24, help="Requests of 64 tweets.")
    parser.add_argument("--embed-clients", type=int, default=4)
    parser.add_argument("--embed-rounds", type=int, default=3, help="Served/CLI pairs; the median is kept.")
    parser.add_argument("--malformed", type=int, default=1000)
    parser.add_argument("--cold-runs", type=int, default=3)
    parser.add_argument("--out", default="bench/out/serve_load.json")
    parser.add_argument("server_args", nargs="*", help="After --: more `encajes serve` options.")
    args = parser.parse_args()
    with open(args.queries_from, encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle) if row["text"].strip()]
    results = run_all(args, texts)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1, ensure_ascii=False))
    report(results)


def check_api(port: int, workdir: str, model: str) -> dict[str, object]:
    """The routes answer in the documented shapes, and /v1/embeddings equals what embed stored."""
    from pipeline.artifacts.runs import find_run
    from pipeline.artifacts.store import load_embeddings
    from pipeline.core.layout import Workdir

    client = Client(port)
    get = lambda path: json.loads(client.call("GET", path)[1])  # noqa: E731
    post = lambda path, body: json.loads(client.call("POST", path, json.dumps(body).encode())[1])  # noqa: E731
    info = get("/info")
    two = post("/search", {"query": ["I love the beach", "monday again"], "k": 5})
    similar = get("/similar/7?k=5")
    items = get("/items?row_ids=3,1,2")["items"]
    run = find_run(Workdir.at(workdir), model, info["runs"][0]["pooling"])
    stored = load_embeddings(run.paths.embeddings)
    corpus = {i["row_id"]: i["text"] for i in get("/items?row_ids=" + ",".join(map(str, range(64))))["items"]}
    served = post("/v1/embeddings", {"input": [corpus[r] for r in range(64)]})
    got = [d["embedding"] for d in served["data"]]
    by_row = dict(zip(stored.row_ids.tolist(), range(len(stored.row_ids)), strict=True))
    import numpy as np

    mine = np.array(got, dtype=np.float32)
    cosines = (mine * stored.take(np.array([by_row[r] for r in range(64)]))).sum(axis=1)
    checks = {
        "info_has_run_and_limits": bool(info["runs"]) and "max_k" in info["limits"],
        "search_one_list_per_query": [len(r) for r in two["results"]] == [5, 5],
        "hit_fields": set(two["results"][0][0]) == {"rank", "score", "row_id", "id", "label", "text"},
        "similar_leaves_row_out": 7 not in [h["row_id"] for h in similar["results"][0]]
        and similar["row"]["row_id"] == 7,
        "items_in_order": [i["row_id"] for i in items] == [3, 1, 2],
        "embeddings_shape": served["object"] == "list" and served["usage"]["prompt_tokens"] > 64,
    }
    checks["all_met"] = all(checks.values()) and float(cosines.min()) >= 0.999
    checks["min_cosine_to_stored"] = round(float(cosines.min()), 6)
    return checks


def run_all(args: argparse.Namespace, texts: list[str]) -> dict[str, object]:
    server, port = start_server(args.workdir, ["--model", args.model, *args.server_args])
    try:
        api = check_api(port, args.workdir, args.model)
        queries = texts[: args.single + args.concurrent]
        drive(port, "warm-up", search_bodies(texts[-50:], 10), 1)
        single = drive(port, "search", search_bodies(queries[: args.single], 10), 1)
        many = drive(port, "search", search_bodies(queries[args.single :], 10), args.clients)
        batches = json.loads(Client(port).call("GET", "/info")[1])["runs"][0]["batching"]
        chunks = [texts[i * 64 : (i + 1) * 64] for i in range(args.embed_requests)]
        bodies = [("POST", "/v1/embeddings", json.dumps({"input": c}).encode()) for c in chunks]
        pairs = []  # served then CLI, alternated: drift on a shared machine hits both sides alike
        for _ in range(args.embed_rounds):
            served = drive(port, "embeddings x64", bodies, args.embed_clients, texts_per_request=64)
            pairs.append((served, embed_with_cli([t for c in chunks for t in c], args.model)))
        bad = malformed(port, server.pid, args.malformed)
    finally:
        server.terminate()
        server.wait(timeout=30)
    cold = cold_search(args.workdir, args.model, texts[0], args.cold_runs)
    ratios = [round(s.per_second / cli, 3) for s, cli in pairs]
    median = sorted(range(len(ratios)), key=ratios.__getitem__)[len(ratios) // 2]
    return {"api": api, "single": asdict(single), "concurrent": asdict(many), "batching": batches,
            "embeddings": asdict(pairs[median][0]), "embed_cli_texts_per_s": round(pairs[median][1], 1),
            "embed_ratios": ratios, "malformed": bad, "cold_search_s": cold,
            "server_exit": server.returncode}  # fmt: skip


def report(r: dict) -> None:
    single, many, served = r["single"], r["concurrent"], r["embeddings"]
    ratio_qps = many["per_second"] / single["per_second"]
    ratio_embed = served["per_second"] / r["embed_cli_texts_per_s"]
    cold = statistics.median(r["cold_search_s"])
    bad = r["malformed"]
    heads = ("clients", "req", "err", "p50 ms", "p95 ms", "p99 ms", "per s")
    print(
        f"{'scenario':<26}" + "".join(f"{h:>{w}}" for h, w in zip(heads, (8, 6, 5, 9, 9, 9, 9), strict=True))
    )
    for row in (single, many, served):
        print(f"{row['name']:<26}{row['clients']:>8}{row['requests']:>6}{row['errors']:>5}{row['p50_ms']:>9}"
              f"{row['p95_ms']:>9}{row['p99_ms']:>9}{row['per_second']:>9}")  # fmt: skip
    checks = [
        (f"1 client p50 {single['p50_ms']} ms <= 20, p99 {single['p99_ms']} <= 60",
         single["p50_ms"] <= 20 and single["p99_ms"] <= 60 and not single["errors"]),
        (f"{many['clients']} clients {ratio_qps:.2f}x the queries/s of 1 (>= 3), p99 {many['p99_ms']} <= 250",
         ratio_qps >= 3 and many["p99_ms"] <= 250 and not many["errors"]),
        (f"/v1/embeddings {served['per_second']} texts/s = {ratio_embed:.0%} of encajes embed's "
         f"{r['embed_cli_texts_per_s']} (median pair of {r['embed_ratios']}; >= 90%)",
         ratio_embed >= 0.9 and not served["errors"]),
        (f"cold encajes search {cold:.2f} s (median of {r['cold_search_s']}) <= 3", cold <= 3),
        (f"{bad['requests']} malformed: statuses {bad['statuses']}, alive {bad['alive_after']}, RSS "
         f"{bad['rss_mb_before']} -> {bad['rss_mb_after']} MB", bad["all_4xx"] and bad["alive_after"]),
        (f"server stopped cleanly on SIGTERM (exit {r['server_exit']})", r["server_exit"] == 0),
        (f"routes, shapes; /v1/embeddings vs stored: min cosine {r['api']['min_cosine_to_stored']} >= 0.999",
         r["api"]["all_met"]),
    ]  # fmt: skip
    print(f"batching: {r['batching']}")
    print(f"API checks: {r['api']}")
    for text, ok in checks:
        print(f"  [{'met' if ok else 'MISSED'}] {text}")


if __name__ == "__main__":
    main()
