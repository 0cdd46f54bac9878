"""A query encoder for a new process: ONNX Runtime + the model's own fast tokenizer, no torch and no
transformers to import. ``encajes search`` starts in about a second with it, where importing torch and
transformers alone takes several; ``pipeline.encoders.onnx_export`` writes the files, once per model.

It matches the torch encoder it was exported from (checked when exporting): same token ids (the tokenizer
is the one the torch encoder used, saved), same pooling, fp32, L2-normalised. A run of another hidden layer
than the last is queried through a graph that returns every hidden state (``states`` picks the layer's):
each is pooled, a combination averaged, then normalised, as ``Encoder`` pools layers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.layers import hidden_states
from pipeline.core.layout import LAST_LAYER
from pipeline.core.settings import POOLINGS
from pipeline.encoders.padding import pad_batch

GRAPH, TOKENIZER, CHECK = "model.onnx", "tokenizer.json", "check.json"


def runtime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def pool(tokens: np.ndarray, mask: np.ndarray, mode: str, unit: bool = True) -> np.ndarray:
    """Token embeddings -> vectors (unit ones unless ``unit`` is off): ``mean`` over real tokens
    (padding ignored) or token 0."""
    if mode not in POOLINGS:
        raise ValueError(f"Pooling mode {mode!r} is not one of {POOLINGS}")
    tokens = tokens.astype(np.float32, copy=False)
    if mode == "cls":
        vectors = tokens[:, 0]
    elif mode == "mean":
        weights = mask[:, :, None].astype(np.float32)
        vectors = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
    else:  # a mode declared in settings but not written here: it must match ``pooling.Pooling``
        raise NotImplementedError(f"Pooling mode {mode!r} has no ONNX query implementation")
    return normalize(vectors) if unit else vectors


def normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


@dataclass
class OnnxQueryEncoder:
    """Texts -> unit vectors with an exported graph; one padded batch per call (queries are few)."""

    session: Any  # onnxruntime.InferenceSession
    tokenizer: Any  # tokenizers.Tokenizer
    pooling: str
    prefix: str
    pad_id: int
    states: tuple[int, ...] | None = None  # hidden states pooled (a graph of every state); None: last

    @classmethod
    def load(
        cls, folder: Path, pooling: str, prefix: str, max_length: int, layer: str = LAST_LAYER
    ) -> OnnxQueryEncoder:
        """``layer``: the run's hidden layer; any other than ``last`` needs a graph of every state."""
        import onnxruntime
        from tokenizers import Tokenizer

        check = json.loads((folder / CHECK).read_text(encoding="utf-8"))
        tokenizer = Tokenizer.from_file(str(folder / TOKENIZER))
        tokenizer.enable_truncation(max_length)
        tokenizer.no_padding()
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(
            str(folder / GRAPH), options, providers=["CPUExecutionProvider"]
        )
        states = None
        if layer != LAST_LAYER:
            if "layer_count" not in check:
                raise ValueError(f"{folder} holds a last-layer graph: layer {layer} needs every hidden state")
            states = hidden_states(layer, int(check["layer_count"]))
        return cls(session, tokenizer, pooling, prefix, int(check["pad_id"]), states)

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch([self.prefix + t for t in texts])]

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit vectors in input order, ``batch_size`` texts of similar length a pass."""
        ids = self.token_ids(texts)
        order = np.argsort([len(row) for row in ids], kind="stable")
        passes = [order[begin : begin + batch_size] for begin in range(0, len(order), batch_size)]
        vectors = np.concatenate([self._pass([ids[r] for r in rows]) for rows in passes])
        out = np.empty_like(vectors)
        out[order] = vectors
        return out

    def _pass(self, ids: list[list[int]]) -> np.ndarray:
        input_ids, mask = pad_batch(ids, self.pad_id)
        (tokens,) = self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})
        if self.states is None:
            return pool(tokens, mask, self.pooling)
        pooled = [pool(tokens[i], mask, self.pooling, unit=False) for i in self.states]
        return normalize(np.mean(pooled, axis=0) if len(pooled) > 1 else pooled[0])
