"""What a layer sweep costs: `encajes embed` of one layer against `encajes embed --layers SWEEP` of the
same model on the same corpus, alternated in fresh processes, each timed with `/usr/bin/time -v` (wall
time and peak memory). Also checks that the sweep's last-layer run is the plain run, bit for bit.

    .venv/bin/python eval/bench_layer_sweep.py CORPUS_WORKDIR -m e5-small --rounds 2 \
        --layers all,last4,first-last

The corpus is copied into a scratch workdir (nothing is written into CORPUS_WORKDIR).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ENCAJES = str(Path(sys.executable).with_name("encajes"))


def timed(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of one command in a fresh process."""
    done = subprocess.run(
        ["/usr/bin/time", "-v", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return hours * 3600 + minutes * 60 + seconds, rss / 2**20


def vectors(path: Path) -> np.ndarray:
    return torch.load(path, weights_only=True)["embeddings"].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("workdir", type=Path, help="A workdir with an ingested corpus.")
    parser.add_argument("-m", "--model", default="e5-small")
    parser.add_argument("--pooling", default="mean")
    parser.add_argument("--layers", default="all,last4,first-last")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="sweep-"))
    for name in ("corpus.parquet", "manifest.json"):
        shutil.copy(args.workdir / name, scratch / name)
    common = [ENCAJES, "embed", "-w", str(scratch), "-m", args.model, "--pooling", args.pooling, "--force"]
    plain_cmd, sweep_cmd = [*common, "--no-progress"], [*common, "--no-progress", "--layers", args.layers]
    times: dict[str, list[float]] = {"plain": [], "sweep": []}
    memory: dict[str, list[float]] = {"plain": [], "sweep": []}
    last = scratch / "runs" / f"{args.model}__{args.pooling}" / "embeddings.pt"
    for round_ in range(args.rounds):
        order = [("plain", plain_cmd), ("sweep", sweep_cmd)]
        for name, cmd in order if round_ % 2 == 0 else order[::-1]:
            seconds, rss = timed(cmd)
            times[name].append(seconds)
            memory[name].append(rss)
            if name == "plain":
                plain_vectors = vectors(last)
            else:
                sweep_vectors = vectors(last)
            print(f"round {round_ + 1} {name}: {seconds:.1f} s, peak RSS {rss:.2f} GiB", flush=True)
    runs = sorted(p.name for p in (scratch / "runs").iterdir())
    result = {
        "model": args.model,
        "layers": args.layers,
        "runs_written": len(runs),
        "rows": len(plain_vectors),
        "plain_s": times["plain"],
        "sweep_s": times["sweep"],
        "ratio_median": statistics.median(s / p for s, p in zip(times["sweep"], times["plain"], strict=True)),
        "plain_rss_gib": max(memory["plain"]),
        "sweep_rss_gib": max(memory["sweep"]),
        "last_layer_bitwise_equal": bool(np.array_equal(plain_vectors, sweep_vectors)),
    }
    print(json.dumps(result, indent=2))
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
