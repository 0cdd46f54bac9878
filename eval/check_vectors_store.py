"""Issue 8 check: a run whose vectors live in ``vectors.npy`` is indexed and mapped in bounded memory.

Writes N synthetic tweet-like vectors (``clustered_vectors``, calibrated against real MiniLM ones) as a
``minilm`` run with the npy store, then runs, each in a fresh process under ``/usr/bin/time -v``:
``encajes index`` (auto kind, default 4 GB budget) and UMAP of the run (``umap_2d`` on the file-backed
embeddings: a sample fitted, every other row placed block by block). Prints each one's peak RSS next to
the size of the vectors. The vectors are generated in this parent process, which is not measured.

    .venv/bin/python eval/check_vectors_store.py --rows 3000000 --workdir /tmp/store-check
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from pipeline.artifacts.runs import run_paths
from pipeline.artifacts.store import save_embeddings_streamed
from pipeline.core.hashing import file_sha256
from pipeline.core.layout import Workdir
from pipeline.core.manifest import record_stage
from pipeline.tools.bench.index import clustered_vectors

UMAP_SNIPPET = """
import json, sys, time
from pipeline.core.layout import Workdir
from pipeline.stages.plot.projection import umap_2d
from pipeline.artifacts.runs import find_run
from pipeline.core.settings import UmapSettings
from pipeline.artifacts.store import load_embeddings
run = find_run(Workdir.at(sys.argv[1]), "minilm", "mean")
projection = umap_2d(load_embeddings(run.paths.embeddings), UmapSettings(fit_rows=int(sys.argv[2])))
print(json.dumps({
    "rows": len(projection.xy),
    "fitted": projection.fitted_rows,
    **projection.seconds,
    "peak_rss_after_fit_mb": projection.peak_rss_after_fit_mb,
}))
"""


def write_run(workdir: Path, rows: int, dim: int) -> Path:
    run = run_paths(Workdir.at(workdir), "minilm", "mean")
    run.root.mkdir(parents=True, exist_ok=True)
    vectors = clustered_vectors(rows, dim, seed=0)
    blocks = (vectors[begin : begin + 100_000] for begin in range(0, rows, 100_000))
    meta = {"model": "minilm", "pooling": "mean", "normalized": True}
    save_embeddings_streamed(run.embeddings, run.vectors, blocks, rows, dim, np.arange(rows), meta)
    inputs = {"model": "minilm", "pooling": "mean", "synthetic": rows}
    outputs = {"rows": rows, "dim": dim, "settings": {"store": "npy"}}
    record_stage(run.manifest, "embed", inputs, outputs, embeddings_sha256=file_sha256(run.embeddings))
    return run.vectors


def measured(cmd: list[str]) -> tuple[dict, float, float]:
    """(last JSON line of stdout, peak RSS in GB, wall seconds) of one fresh process."""
    done = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed:\n{done.stderr[-3000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time .*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    hours, minutes, seconds = (float(part or 0) for part in wall.groups())
    out = done.stdout.strip()
    payload = json.loads(out[out.index("{") :] if out.startswith("{") else out.splitlines()[-1])
    return payload, peak_kb / 1e6, hours * 3600 + minutes * 60 + seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--fit-rows", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/encajes-store-check"))
    parser.add_argument("--only", choices=["index", "umap"], help="reuse the workdir's vectors, run one")
    args = parser.parse_args()
    if args.only is None:
        shutil.rmtree(args.workdir, ignore_errors=True)
        write_run(args.workdir, args.rows, args.dim)
    vectors = next((args.workdir / "runs").glob("*/vectors.npy"))
    size_gb = vectors.stat().st_size / 1e9
    print(f"vectors.npy: {args.rows:,} x {args.dim} = {size_gb:.2f} GB", flush=True)
    encajes = str(Path(sys.executable).with_name("encajes"))
    if args.only != "umap":
        report, peak, wall = measured([encajes, "index", "--workdir", str(args.workdir), "--json", "--force"])
        recall = report.get("recall") or {}
        print(
            f"index: {report['kind']} ({report.get('search_params')}), peak RSS {peak:.2f} GB "
            f"({peak / size_gb:.0%} of the vectors), {wall:.0f} s; recall@10 {recall.get('recall_at_k')}, "
            f"{recall.get('speedup_over_exact', 0):.1f}x the block scan",
            flush=True,
        )
    if args.only == "index":
        return
    umap, peak, wall = measured([sys.executable, "-c", UMAP_SNIPPET, str(args.workdir), str(args.fit_rows)])
    print(f"umap: {umap}, peak RSS {peak:.2f} GB ({peak / size_gb:.0%} of the vectors), {wall:.0f} s")


if __name__ == "__main__":
    main()
