"""Token ids of a batch -> a padded id matrix and its attention mask (numpy, no torch): what the torch
encoder and the ONNX Runtime query encoder both feed their model."""

from __future__ import annotations

import numpy as np


def pad_batch(batch: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad every row to the batch's longest: (input ids, attention mask), both int64."""
    width = max(len(ids) for ids in batch)
    input_ids = np.full((len(batch), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(batch), width), dtype=np.int64)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = ids
        mask[row, : len(ids)] = 1
    return input_ids, mask
