"""Cosine similarity of a few sentences, as a matrix and a heatmap (the course's first exercise)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import EncajesError
from pipeline.core.settings import EmbedSettings


def similarity_matrix(vectors: np.ndarray) -> np.ndarray:
    """Rows are L2-normalised, so the Gram matrix is the cosine similarity."""
    return np.clip(vectors @ vectors.T, -1.0, 1.0)


@dataclass
class Similarity:
    sentences: list[str]
    matrix: np.ndarray
    title: str
    png: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.title,
            "sentences": self.sentences,
            "matrix": self.matrix.round(4).tolist(),
            "png": str(self.png) if self.png else None,
        }

    def lines(self) -> list[str]:
        out = [f"{self.title}: cosine similarity"]
        for i, sentence in enumerate(self.sentences):
            row = "  ".join(f"{value:5.2f}" for value in self.matrix[i])
            out.append(f"{i + 1:>2}. {row}   {sentence[:60]}")
        if self.png:
            out.append(f"heatmap: {self.png}")
        return out


def sentence_similarity(sentences: list[str], settings: EmbedSettings, png: Path | None = None) -> Similarity:
    if len(sentences) < 2:
        raise EncajesError("Give at least two sentences to compare.")
    from pipeline.encoders.loading import load_encoder, resolve_settings

    resolved = resolve_settings(settings)
    matrix = similarity_matrix(load_encoder(resolved).encode(sentences).vectors)
    result = Similarity(list(sentences), matrix, f"{resolved.model.key} · {resolved.pooling}")
    if png is not None:
        from pipeline.render.figures import plot_similarity

        result.png = png.resolve()
        plot_similarity(sentences, matrix, result.title, result.png)
    return result
