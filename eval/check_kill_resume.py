"""Issue 7 check: `encajes embed` on 20,000 tweets, killed with SIGKILL three times at random moments,
then finished, equals an uninterrupted run bitwise (CPU, fp32).

    .venv/bin/python eval/check_kill_resume.py [--rows 20000] [--seed 7]
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT.parent / "shared" / "data" / "tweeteval_emoji" / "train.csv"


def encajes(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


def run(*args: str, **options) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        encajes(*args), cwd=ROOT, env=env, check=True, capture_output=True, text=True, **options
    )


def kill_at_random(workdir: Path, chunk_rows: int, shard_seconds: float, rng: random.Random) -> dict:
    """Start an embed, let it write a shard, kill it with SIGKILL at a random moment after."""

    def shards_on_disk() -> int:
        return len(list((workdir / "runs").glob("*/shards/*.npz")))

    before = shards_on_disk()
    victim = subprocess.Popen(
        encajes("embed", "-w", str(workdir), "--no-progress", "--chunk-rows", str(chunk_rows)),
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.perf_counter()
    while shards_on_disk() <= before and victim.poll() is None:  # let it make some progress...
        time.sleep(0.02)
    time.sleep(rng.uniform(0, 1.5) * shard_seconds)  # ...then kill it at a random moment
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    return {"killed_after_s": round(time.perf_counter() - started, 1), "shards_on_disk": shards_on_disk()}


@click.command()
@click.option("--rows", default=20000)
@click.option("--kills", default=3)
@click.option("--seed", default=7)
@click.option(
    "--chunk-rows", default=1000, help="Rows per shard: small enough that kills land between shards."
)
def main(rows: int, kills: int, seed: int, chunk_rows: int) -> None:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="encajes-kill-") as tmp:
        csv_path = Path(tmp) / "tweets.csv"
        pd.read_csv(TRAIN, keep_default_na=False, dtype=str).head(rows).to_csv(csv_path, index=False)
        for name in ("clean", "killed"):
            run("ingest", str(csv_path), "-w", f"{tmp}/{name}")
        start = time.perf_counter()
        run("embed", "-w", f"{tmp}/clean", "--no-progress", "--chunk-rows", str(chunk_rows))
        clean_seconds = time.perf_counter() - start
        shard_seconds = clean_seconds * chunk_rows / rows
        log = [kill_at_random(Path(tmp, "killed"), chunk_rows, shard_seconds, rng) for _ in range(kills)]
        done = run("embed", "-w", f"{tmp}/killed", "--no-progress", "--json", "--chunk-rows", str(chunk_rows))
        final = json.loads(done.stdout)
        (a,) = Path(tmp, "clean", "runs").glob("*/embeddings.pt")
        (b,) = Path(tmp, "killed", "runs").glob("*/embeddings.pt")
        x, y = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
        result = {
            "rows": rows,
            "clean_embed_s": round(clean_seconds, 1),
            "kills": log,
            "resumed_shards_on_final_run": final["resumed_shards"],
            "bitwise_equal_embeddings": bool(torch.equal(x["embeddings"], y["embeddings"])),
            "same_row_ids": bool(torch.equal(x["row_ids"], y["row_ids"])),
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
