"""Issue 3 check: our `minilm`/mean embeddings equal sentence-transformers' `encode`, and self-search works.

Runs the real stages (ingest -> embed -> index -> search) on a CSV (default: TweetEval emoji val, 5,000
tweets, read from ../shared) and prints one JSON object:

- per-row cosine between our stored embeddings and SentenceTransformer(...).encode of the same texts
  (same model folder, same max length): min, mean, rows below 0.999;
- self-search: each tweet's own text as the query; the top hit must be that row or one with identical text.

    .venv/bin/python eval/check_core_chain.py [--csv PATH] [--workdir work/eval-val]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import Workspace
from pipeline.encoders.models import resolve_model

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "tweeteval_emoji" / "val.csv"


@click.command()
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False), default=str(DEFAULT_CSV))
@click.option("--workdir", default="work/eval-val")
@click.option("--max-length", default=256, help="all-MiniLM-L6-v2's own max_seq_length is 256.")
def main(csv_path: str, workdir: str, max_length: int) -> None:
    from sentence_transformers import SentenceTransformer

    ws = Workspace(workdir)
    ingested = ws.ingest([csv_path])
    embedded = ws.embed(model="minilm", pooling="mean", max_length=max_length)
    ours = ws.embeddings("minilm", "mean")
    corpus = ws.corpus
    texts = corpus["text"].tolist()

    st_model = SentenceTransformer(resolve_model("minilm").source, device="cpu")
    st_model.max_seq_length = max_length
    theirs = st_model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    cosine = (ours.vectors * theirs).sum(axis=1)

    hits = ws.search(texts, k=1, model="minilm", pooling="mean")
    assert len(hits) == len(texts), "k=1 gives one hit per query, in query order"
    top_row, top_text, top_score = (
        hits["row_id"].to_numpy(),
        hits["text"].to_numpy(),
        hits["score"].to_numpy(),
    )
    self_first = (top_row == corpus["row_id"].to_numpy()) | (top_text == np.asarray(texts, dtype=object))
    # A different text with the very same vector (e.g. a leading U+FE0F that the tokenizer drops) ties
    # with the row itself at cosine 1; FAISS may list either first.
    tie = ~self_first & (top_score >= 1 - 1e-5)
    report = {
        "csv": csv_path,
        "rows_read": ingested.rows_read,
        "rows_kept": ingested.rows_kept,
        "rows_rejected": ingested.rows_rejected,
        "embed_skipped": embedded.skipped,
        "ours_texts_per_s": embedded.texts_per_second,
        "cosine_min": float(cosine.min()),
        "cosine_mean": float(cosine.mean()),
        "rows_below_0.999": int((cosine < 0.999).sum()),
        "self_search_top1_ok": int(self_first.sum()),
        "self_search_top1_rate": float(self_first.mean()),
        "self_search_ties_at_cosine_1": [
            {"row_id": int(r), "text": texts[r], "tied_with": top_text[r]} for r in np.flatnonzero(tie)[:5]
        ],
        "self_search_failures": int((~self_first & ~tie).sum()),
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
