"""Which run a typed ``--layer`` means: one layer name as a user types it ("last", "6", "-2", "last4",
"first-last") -> the canonical layer of a (model, pooling) run, and that run.

A layer counted from the end needs the model's number of layers. Nothing is loaded to learn it: it is
read from what an embed of the same (model, pooling) recorded in the workdir (any of its layer runs).
"""

from __future__ import annotations

import re

from pipeline.artifacts.runs import Run, find_run, find_run_at, run_paths
from pipeline.core.errors import EncajesError
from pipeline.core.layers import COMBINATIONS, canonical_layer
from pipeline.core.layout import LAST_LAYER, Workdir
from pipeline.core.settings import DEFAULT_MODEL

ONE_LAYER = re.compile(r"last|last4|first-last|-?\d+")
LAYER_HELP = (
    "The run's hidden layer, as `encajes embed --layers` made it: last (the default), a layer number "
    "(0: the embedding layer), a negative number counting from the end (-2: the one before the last), "
    "last4 or first-last."
)


def check_layer(layer: str) -> str:
    """A typed layer, stripped, or an error that says what one layer looks like."""
    text = str(layer).strip()
    if not ONE_LAYER.fullmatch(text):
        extra = " (all is for `encajes embed --layers`; pick one of its runs)" if text == "all" else ""
        raise EncajesError(
            f"--layer {layer!r} is not one layer{extra}: give last, a layer number such as 6, -2 (from "
            f"the end), {' or '.join(COMBINATIONS)}."
        )
    return text


def recorded_layer_count(work: Workdir, model: str, pooling: str | None) -> int | None:
    """The model's number of layers as an embed of this (model, pooling) recorded it, or None."""
    last = run_paths(work, model, pooling).root.name
    for paths in work.run_folders():
        name = paths.root.name
        if name == last or name.startswith(last + "__"):
            run = find_run_at(paths)
            if run is not None and run.embed.layer_count:
                return run.embed.layer_count
    return None


def resolve_layer(
    work: Workdir, model: str = DEFAULT_MODEL, pooling: str | None = None, layer: str = LAST_LAYER
) -> str:
    """The canonical layer name of a typed one ("-2" -> "1" for a model of two layers)."""
    text = check_layer(layer)
    if text in (LAST_LAYER, *COMBINATIONS) or not text.lstrip("-").isdigit():
        return text
    count = recorded_layer_count(work, model, pooling)
    if count is None and text.startswith("-"):
        folder = run_paths(work, model, pooling).root.name
        raise EncajesError(
            f"--layer {text} counts from the end, which needs the model's number of layers, and no run "
            f"{folder}* in {work.root} recorded it: give the layer's number from the start (0 is the "
            f"embedding layer) or 'last', or run `encajes embed --layers {text}` first (it records it)."
        )
    return canonical_layer(text, count)


def find_layer_run(
    work: Workdir, model: str = DEFAULT_MODEL, pooling: str | None = None, layer: str = LAST_LAYER
) -> Run:
    """The finished run of (model, pooling) at a typed layer, or an error that says which embed to run."""
    return find_run(work, model, pooling, resolve_layer(work, model, pooling, layer))
