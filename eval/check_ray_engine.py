"""Issue 8 check: the Ray Data engine (local cluster, 2 actors) embeds like the local engine, and how fast.

Ingests the first N tweets of a CSV into two workdirs, embeds one with ``--engine local`` and the other
with ``--engine ray --workers 2``, then compares row order and per-row cosine, and the encode time of
each (the Ray figure includes starting actors and loading a model replica in each).

    .venv/bin/python eval/check_ray_engine.py ../shared/data/tweeteval_emoji/test.csv --rows 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from pipeline.core.settings import EmbedSettings, EngineSettings
from pipeline.stages.embed.stage import embed_corpus
from pipeline.stages.ingest.stage import ingest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("csv", type=Path)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frame = pd.read_csv(args.csv, keep_default_na=False, dtype=str).head(args.rows)
        frame.to_csv(root / "tweets.csv", index=False)
        results = {}
        for name, engine in (
            ("local", EngineSettings("local")),
            ("ray", EngineSettings("ray", workers=args.workers)),
        ):
            ingest([root / "tweets.csv"], root / name)
            start = time.perf_counter()
            report = embed_corpus(root / name, EmbedSettings(model=args.model), progress=False, engine=engine)
            results[name] = (time.perf_counter() - start, report)
        local = torch.load(results["local"][1].embeddings, weights_only=True)
        ray = torch.load(results["ray"][1].embeddings, weights_only=True)
        cosine = (local["embeddings"] * ray["embeddings"]).sum(dim=1)
        print(f"{args.rows:,} tweets, {args.model}, ray with {args.workers} workers")
        print(f"same row order: {torch.equal(local['row_ids'], ray['row_ids'])}")
        print(f"per-row cosine: min {cosine.min():.7f}, rows below 0.9999: {(cosine < 0.9999).sum().item()}")
        for name, (seconds, report) in results.items():
            print(f"{name:>5}: {seconds:6.1f}s wall, {report.texts_per_second:,.0f} texts/s while encoding")
        print(f"ray / local wall-time throughput: {results['local'][0] / results['ray'][0]:.2f}")


if __name__ == "__main__":
    main()
