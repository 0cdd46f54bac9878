"""Finding a run: the folder that ``encajes embed --model M --pooling P`` wrote, from the name alone.

Locating a run never loads, converts or downloads a model: ``index``, ``probe``, ``plot``, ``search``
and ``status`` only need to know what the name means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.core.errors import EncajesError
from pipeline.core.layout import LAST_LAYER, RunPaths, Workdir
from pipeline.core.manifest import stage_entry
from pipeline.core.settings import DEFAULT_MODEL, EmbedSettings
from pipeline.encoders.models import choose_pooling, identify


@dataclass(frozen=True)
class EmbedRecord:
    """What a run's embed stage recorded in its manifest, as the readers of a run need it: the settings
    a query must be embedded with to land in the same space, and what the vectors are."""

    model: str
    pooling: str
    max_length: int
    prefix: str
    dtype: str  # as asked: fp32, bf16 or fp16
    weights: str  # fingerprint of the weights: "hub:owner/name@commit" for a hub model
    dim: int
    trust_remote_code: bool
    model_revision: str | None  # the hub commit the weights came from ("" or None for folders)
    embeddings_sha256: str | None  # what downstream stages depend on
    layer: str = LAST_LAYER  # the hidden layer pooled: "last", a layer number, "last4" or "first-last"
    layer_count: int | None = None  # the model's hidden layers, where the embed recorded it
    texts_sha256: str | None = None  # the corpus texts the vectors are of (row ids included)

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> EmbedRecord:
        inputs, outputs = entry["inputs"], entry["outputs"]
        settings = outputs.get("settings", {})
        return cls(
            model=inputs["model"],
            pooling=inputs["pooling"],
            max_length=inputs["max_length"],
            prefix=inputs["prefix"],
            dtype=inputs["dtype"],
            weights=inputs.get("weights") or "",
            dim=outputs["dim"],
            trust_remote_code=bool(settings.get("trust_remote_code")),
            model_revision=settings.get("model_revision"),
            embeddings_sha256=entry.get("embeddings_sha256"),
            layer=inputs.get("layer", LAST_LAYER),
            layer_count=settings.get("layer_count"),
            texts_sha256=inputs.get("texts_sha256"),
        )

    @property
    def from_hub(self) -> bool:
        return self.weights.startswith("hub:")


@dataclass(frozen=True)
class Run:
    """An embedded run: its files and what its embed stage recorded."""

    paths: RunPaths
    embed: EmbedRecord

    @property
    def model(self) -> str:
        return self.embed.model

    @property
    def pooling(self) -> str:
        return self.embed.pooling

    @property
    def layer(self) -> str:
        return self.embed.layer

    @property
    def title(self) -> str:
        return run_title(self.model, self.pooling, self.layer)

    @property
    def embeddings_sha256(self) -> str | None:
        return self.embed.embeddings_sha256


def layer_words(layer: str) -> str:
    """'last', 'layer 6', 'last4', 'first-last': a layer as reports name it."""
    return f"layer {layer}" if layer.isdigit() else layer


def run_title(model: str, pooling: str, layer: str = LAST_LAYER) -> str:
    """'minilm · mean' for the last layer (the run as it always was), 'minilm · mean · layer 6' else."""
    return f"{model} · {pooling}" + ("" if layer == LAST_LAYER else f" · {layer_words(layer)}")


def run_paths(
    work: Workdir, model: str = DEFAULT_MODEL, pooling: str | None = None, layer: str = LAST_LAYER
) -> RunPaths:
    """Where the run of (model, pooling, layer) lives, whether or not it exists yet. ``layer`` is a
    run's layer name: "last", a layer number, "last4" or "first-last"."""
    EmbedSettings(model=model, pooling=pooling)  # the one check of the names
    name = identify(model)
    return work.run(name.key, choose_pooling(name, pooling), layer)


def find_run(
    work: Workdir, model: str = DEFAULT_MODEL, pooling: str | None = None, layer: str = LAST_LAYER
) -> Run:
    """The finished run of (model, pooling, layer), or an error that says which embed to run."""
    paths = run_paths(work, model, pooling, layer)
    if (run := find_run_at(paths)) is None:
        pooling = paths.root.name.split("__")[1]
        of_layer = "" if layer == LAST_LAYER else f" at {layer_words(layer)}"
        layers = "" if layer == LAST_LAYER else f" --layers {layer}"
        raise EncajesError(
            f"No embeddings for model {model!r} with {pooling} pooling{of_layer} in {work.root}: run "
            f"`encajes embed --workdir {work.root} --model {model} --pooling {pooling}{layers}` first."
        )
    return run


def find_run_at(paths: RunPaths) -> Run | None:
    """The run in this folder as its manifest says now, or None if it has no finished embed."""
    entry = stage_entry(paths.manifest, "embed")
    if entry is None or not paths.embeddings.exists():
        return None
    return Run(paths, EmbedRecord.from_entry(entry))
