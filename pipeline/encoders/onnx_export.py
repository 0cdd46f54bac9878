"""Export a model for ``OnnxQueryEncoder``, once per model weights, into the user cache: the graph (token
embeddings for any batch and length), the tokenizer the torch encoder uses, and a check that both give
the same vectors as the torch encoder on probe texts. Nothing is kept if the check fails. A layer run's
graph returns every hidden state (the last being the model's own output, as ``Transformer.hidden_states``
gives it), so one export serves every layer of a model."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from pipeline.core.errors import EncajesError
from pipeline.core.layout import LAST_LAYER
from pipeline.core.settings import EmbedSettings
from pipeline.encoders.loading import load_encoder, resolve_settings
from pipeline.encoders.onnx_query import CHECK, GRAPH, TOKENIZER, OnnxQueryEncoder

PROBES = [
    "hola",
    "Qué ganas de ir a la playa este verano 🏖️ #vacaciones @amiga",
    "I love the beach so much today!!! 😂😂 http://t.co/abc",
    "Lunes otra vez... 😴",
    "word " * 400,  # past any max length: truncation must match too
]
AGREEMENT = 0.99999  # least cosine between the two encoders' vectors of a probe


@contextlib.contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class TokenEmbeddings(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask)[0]


class AllHiddenStates(torch.nn.Module):
    """(states, batch, length, dim): the embedding layer's output, then each layer's."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return torch.stack([*out.hidden_states[:-1], out[0]])


def export_query_encoder(settings: EmbedSettings, folder: Path, layer: str = LAST_LAYER) -> float:
    """Write ``folder`` (atomically: all files or none) and return the least probe cosine; ``layer``
    other than ``last``: a graph of every hidden state, checked on that layer."""
    from transformers import AutoModel

    resolved = resolve_settings(replace(settings, dtype="fp32", device="cpu"))
    layers = None if layer == LAST_LAYER else (layer,)
    reference = load_encoder(resolved, layers)  # the torch encoder the exported one must agree with
    pinned = {"revision": resolved.model.revision} if resolved.model.revision else {}
    network = AutoModel.from_pretrained(
        resolved.model.source, dtype=torch.float32, attn_implementation="eager", **pinned
    ).eval()
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        # two rows of seven tokens, one padded: neither size is 1, so neither is fixed in the graph
        example_ids = torch.randint(5, 100, (2, 7), generator=torch.Generator().manual_seed(0))
        example_mask = torch.ones_like(example_ids)
        example_mask[0, 5:] = 0
        dynamic = {0: torch.export.Dim.DYNAMIC, 1: torch.export.Dim.DYNAMIC}  # batch, length
        with warnings.catch_warnings(), quiet_logger("torch.onnx"):
            warnings.simplefilter("ignore")  # the exporter's notes on optional ops and deprecations
            torch.onnx.export(
                (TokenEmbeddings if layers is None else AllHiddenStates)(network).eval(),
                (example_ids, example_mask),
                str(work / GRAPH),
                input_names=["input_ids", "attention_mask"],
                output_names=["tokens"],
                dynamic_shapes={"input_ids": dynamic, "attention_mask": dynamic},
                dynamo=True,
                verbose=False,
            )
        reference.transformer.tokenizer.backend_tokenizer.save(str(work / TOKENIZER))
        pad_id = reference.transformer.pad_id
        check: dict[str, object] = {"pad_id": pad_id}
        if layers is not None:
            check["layer_count"] = reference.transformer.layer_count
        (work / CHECK).write_text(json.dumps(check), encoding="utf-8")
        exported = OnnxQueryEncoder.load(work, resolved.pooling, resolved.prefix, resolved.max_length, layer)
        want_ids, _ = reference.tokenize(PROBES)
        if exported.token_ids(PROBES) != want_ids:
            raise EncajesError("the saved tokenizer gives other token ids than the model's")
        wanted = reference.encode(PROBES).vectors
        wanted = wanted if layers is None else wanted[0]
        agreement = float(np.min(np.sum(exported.encode(PROBES) * wanted, axis=1)))
        if agreement < AGREEMENT:
            raise EncajesError(f"the exported graph's vectors differ from torch's (cosine {agreement:.6f})")
        check.update(model=resolved.model.key, least_probe_cosine=agreement)
        (work / CHECK).write_text(json.dumps(check, indent=1), encoding="utf-8")
        if (folder / CHECK).exists():  # another process finished the same export first: keep its
            return agreement
        shutil.rmtree(folder, ignore_errors=True)
        work.rename(folder)
        return agreement
    finally:
        shutil.rmtree(work, ignore_errors=True)
