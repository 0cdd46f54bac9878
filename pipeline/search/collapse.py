"""Near-duplicates folded into the better hit (retweets, copy-pasted tweets): pure, on the candidates'
vectors. Greedy in score order, so a candidate stays a hit exactly when no better hit is within the
threshold; the hits of a longer candidate list start with those of a shorter one (pages stay stable)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Folded:
    """One distinct hit: its candidate position, and the positions folded into it (best first)."""

    at: int
    similar: list[int] = field(default_factory=list)


def collapse(
    vectors: np.ndarray, threshold: float, wanted: int, block: int = 512, seeds: np.ndarray | None = None
) -> tuple[list[Folded], bool]:
    """Candidates (rows of ``vectors``, best first) -> distinct hits, each with the candidates within
    cosine ``threshold`` of it folded in (a candidate near several goes to the nearest). Stops adding hits
    at ``wanted`` but still folds the remaining candidates into them. Also says whether ``wanted`` was
    reached. ``threshold`` 0 or above 1 folds nothing. ``seeds``: vectors that count as hits already
    shown (the rows a query is "like"): candidates near them are copies of them, dropped. Each candidate is
    compared with the hits only (block by block), never with every other candidate: thousands of
    retweets cost a few matrix products."""
    n = len(vectors)
    if threshold <= 0 or threshold > 1 or n == 0:
        return [Folded(i) for i in range(min(n, wanted))], n >= wanted
    given = 0 if seeds is None else len(seeds)
    kept: list[Folded] = [Folded(-1) for _ in range(given)]
    heads = np.zeros((0, vectors.shape[1]), dtype=np.float32) if seeds is None else seeds.astype(np.float32)
    for begin in range(0, n, block):
        chunk = vectors[begin : begin + block]
        sims = (chunk @ heads.T).tolist()  # against the hits kept before this block
        for j, row in enumerate(sims):
            if len(kept) > len(row):  # hits added within this block
                row = row + (heads[len(row) :] @ chunk[j]).tolist()
            best = max(range(len(row)), key=row.__getitem__) if row else -1
            if best >= 0 and row[best] >= threshold:
                kept[best].similar.append(begin + j)
            elif len(kept) - given < wanted:
                kept.append(Folded(begin + j))
                heads = np.concatenate([heads, chunk[j : j + 1]])
    return kept[given:], len(kept) - given >= wanted
