"""Cosine similarity of a few sentences, as a matrix and a heatmap (the course's first exercise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.embed import EmbedSettings, load_encoder, resolve_settings
from pipeline.errors import EncajesError
from pipeline.plot import plot_similarity


def similarity_matrix(vectors: np.ndarray) -> np.ndarray:
    """Rows are L2-normalised, so the Gram matrix is the cosine similarity."""
    return np.clip(vectors @ vectors.T, -1.0, 1.0)


def sentence_similarity(
    sentences: list[str], settings: EmbedSettings, png: Path | None = None
) -> tuple[np.ndarray, str]:
    if len(sentences) < 2:
        raise EncajesError("Give at least two sentences to compare.")
    resolved = resolve_settings(settings)
    vectors = load_encoder(resolved).encode(sentences).vectors
    matrix = similarity_matrix(vectors)
    title = f"{resolved.model.key} · {resolved.pooling}"
    if png is not None:
        plot_similarity(sentences, matrix, title, png)
    return matrix, title
