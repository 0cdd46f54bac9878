"""Are the bench's synthetic vectors as hard to search as real tweet embeddings?

Takes a run's ``embeddings.pt`` (real tweets), makes as many synthetic vectors of the same dimension
(``indexes.approximate.clustered_vectors``), and on each: holds out 1,000 vectors as queries, then prints
the mean cosine to the 1st and 10th neighbour, and recall@10 of HNSW32 and IVF-Flat at a few settings.

    .venv/bin/python eval/check_synthetic_vectors.py work/mem-test/runs/minilm__mean/embeddings.pt
"""

from __future__ import annotations

import sys
from pathlib import Path

import faiss
import numpy as np
import torch

from indexes.approximate import ivf_lists, recall_at_k
from pipeline.tools.bench.index import clustered_vectors


def difficulty(vectors: np.ndarray) -> dict[str, float]:
    base, queries = np.ascontiguousarray(vectors[:-1000]), np.ascontiguousarray(vectors[-1000:])
    dim = base.shape[1]
    exact = faiss.IndexFlatIP(dim)
    exact.add(base)
    scores, _ = exact.search(queries, 10)
    out = {"top1_cos": float(scores[:, 0].mean()), "top10_cos": float(scores[:, 9].mean())}
    hnsw = faiss.index_factory(dim, "HNSW32,Flat", faiss.METRIC_INNER_PRODUCT)
    hnsw.add(base)
    for ef in (16, 64):
        hnsw.hnsw.efSearch = ef
        out[f"hnsw_ef{ef}"] = recall_at_k(hnsw, exact, queries)["recall_at_k"]
    nlist = ivf_lists(len(base))
    ivf = faiss.index_factory(dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
    ivf.train(base)
    ivf.add(base)
    for share in (64, 16):
        ivf.nprobe = max(1, nlist // share)
        out[f"ivf_nlist/{share}"] = recall_at_k(ivf, exact, queries)["recall_at_k"]
    return out


def main(path: Path) -> None:
    real = torch.load(path, weights_only=True)["embeddings"].numpy()
    real = real[np.random.default_rng(0).permutation(len(real))]
    synthetic = clustered_vectors(len(real), real.shape[1])
    rows = {"real": difficulty(real), "synthetic": difficulty(synthetic)}
    keys = list(rows["real"])
    print(f"{len(real):,} vectors x {real.shape[1]} (1,000 held out as queries)")
    print(f"{'':10}" + "".join(f"{k:>14}" for k in keys))
    for name, row in rows.items():
        print(f"{name:10}" + "".join(f"{row[k]:>14.3f}" for k in keys))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
