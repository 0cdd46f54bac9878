"""Hidden-layer names, pure: what ``--layers`` asks for, and which hidden states each name pools.

A model with ``L`` layers has ``L + 1`` hidden states: 0 is the embedding layer's output, ``i`` the
output of layer ``i``. A run's layer is named canonically, so one layer is one run however it was
typed: ``last`` (layer ``L``, the run embed always made), a layer number ``0 .. L-1``, ``last4`` (the
mean of the last four layers' pooled vectors) or ``first-last`` (of layers 1 and ``L``, as BERT-flow
and SimCSE average them). Negative numbers count from the end: ``-1`` is ``last``, ``-2`` is ``L-1``.
"""

from __future__ import annotations

from pipeline.core.errors import EncajesError
from pipeline.core.layout import LAST_LAYER

COMBINATIONS = ("last4", "first-last")


def layer_items(spec: str) -> list[str]:
    """The items of a ``--layers`` value as typed (``"-2, 6,last4"`` -> ``["-2", "6", "last4"]``)."""
    return [item.strip() for item in spec.split(",") if item.strip()]


def canonical_layer(item: str, count: int | None) -> str:
    """One typed item (not ``all``) as a run's layer name; ``count`` is the model's number of layers
    (None where it is not known: then only names that do not depend on it are accepted)."""
    if item in (LAST_LAYER, *COMBINATIONS):
        if item == "last4" and count is not None and count < 4:
            raise EncajesError(f"--layers last4 needs four layers; the model has {count}.")
        return item
    number = int(item)
    if count is None:
        if number < 0:
            raise EncajesError(
                f"Layer {item} counts from the end, which needs the model's number of layers: give the "
                "layer's number from the start (0 is the embedding layer), or 'last'."
            )
        return str(number)
    if not -count - 1 <= number <= count:
        raise EncajesError(f"Layer {item} does not exist: the model has layers 0..{count} (0: embeddings).")
    number = number if number >= 0 else count + 1 + number
    return LAST_LAYER if number == count else str(number)


def expand_layers(spec: str, count: int) -> list[str]:
    """A ``--layers`` value as canonical run layers in the order asked, each once; ``all`` is every
    layer from 1 to the last (add ``0`` for the embedding layer)."""
    out: list[str] = []
    for item in layer_items(spec):
        names = [*map(str, range(1, count)), LAST_LAYER] if item == "all" else [canonical_layer(item, count)]
        out += [name for name in names if name not in out]
    return out


def hidden_states(layer: str, count: int) -> tuple[int, ...]:
    """The hidden states a layer name pools (their pooled vectors are averaged, then normalised)."""
    if layer == LAST_LAYER:
        return (count,)
    if layer == "last4":
        return tuple(range(count - 3, count + 1))
    if layer == "first-last":
        return (1, count)
    return (int(layer),)


def layer_order(layer: str) -> tuple[int, int]:
    """Sort key: layer numbers ascending, ``last`` after them, then ``last4`` and ``first-last``."""
    if layer.isdigit():
        return (0, int(layer))
    return (1, [LAST_LAYER, *COMBINATIONS].index(layer))
