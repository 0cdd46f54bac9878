"""The layer sweep in words: which hidden layer the inner cross-validation picks, and whether its test
figure differs from the last layer's.

The pick uses only the training rows (the probe's inner-CV macro-F1), never the test figures: picking
by test macro-F1 would report the luckiest of a dozen layers as if it had been chosen beforehand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline.core.layers import layer_order
from pipeline.core.layout import LAST_LAYER
from pipeline.render.study_values import LayerScore

__all__ = ["LayerScore", "best_layer", "layer_phrase", "layer_sentence"]

TIE_TOLERANCE = 1e-9  # inner-CV means that agree this closely are a tie


def _preference(score: LayerScore) -> tuple[int, tuple[int, int]]:
    """Among tied layers: "last" first (the run one would make anyway), else the later layer."""
    return (score.layer == LAST_LAYER, layer_order(score.layer))


def best_layer(scores: Sequence[LayerScore]) -> LayerScore:
    """The layer with the highest inner-CV macro-F1; ties go to "last" if it is among them, else to the
    later layer; with no inner-CV figure anywhere (C and k fixed), the "last" layer, or the deepest
    numbered one (a combination only when there is nothing else): nothing was chosen."""
    if not scores:
        raise ValueError("no layers to choose from")
    judged = [score for score in scores if score.cv is not None and not math.isnan(score.cv)]
    if not judged:
        return max(
            scores,
            key=lambda score: (score.layer == LAST_LAYER, score.layer.isdigit(), layer_order(score.layer)),
        )
    top = max(score.cv for score in judged if score.cv is not None)
    tied = [score for score in judged if score.cv is not None and top - score.cv <= TIE_TOLERANCE]
    return max(tied, key=_preference)


def layer_phrase(layer: str) -> str:
    """'the last layer', 'layer 9', 'last4 (the mean of the last four layers)'."""
    if layer == LAST_LAYER:
        return "the last layer"
    if layer.isdigit():
        return f"layer {layer}"
    means = {"last4": "the last four layers", "first-last": "the first and last layers"}
    return f"{layer} (the mean of {means[layer]})" if layer in means else layer


def _p_words(p: float) -> str:
    if p < 0.001:
        return "< 0.001"
    return f"= {p:.3f}" if p < 0.01 else f"= {p:.2f}"


def _tested(best: LayerScore, last: LayerScore, pair: Mapping[str, Any], best_first: bool | None) -> str:
    """The paired test of best vs last, oriented best - last. A pair row puts the system it measured
    higher first: ``best_first`` says whether that is the best layer's (None: judged by the figures)."""
    if best_first is None:
        best_first = best.macro_f1 >= last.macro_f1
    sign = 1.0 if best_first else -1.0
    difference = sign * float(pair["difference"])
    low, high = sorted((sign * float(pair["low"]), sign * float(pair["high"])))
    verdict = "no significant difference"
    if pair["significant"]:
        winner = best.layer if difference > 0 else LAST_LAYER
        verdict = f"{layer_phrase(winner)} is significantly better"
    return f"{difference:+.3f} [{low:+.3f}, {high:+.3f}], Holm p {_p_words(float(pair['p_holm']))}: {verdict}"


def layer_sentence(
    system: str,
    probe_title: str,
    scores: Sequence[LayerScore],
    best: LayerScore,
    pair: Mapping[str, Any] | None,
    best_first: bool | None = None,
) -> str:
    """One sentence per system and probe: the layer inner CV picks and how its test figure compares
    with the last layer's (``pair``: an ``all_pairs`` row of best vs last, None when best is last or
    untested). The layer with the highest test figure is named too when CV picked another, so a reader
    sees what picking by test figures would have claimed."""
    last = next((score for score in scores if score.layer == LAST_LAYER), None)
    if all(score.cv is None for score in scores):
        head = f"{system}: no inner-CV figures for {probe_title}, so no layer is picked"
        figure = f"{layer_phrase(best.layer)}: test {best.macro_f1:.3f} [{best.low:.3f}, {best.high:.3f}]"
        return f"{head} ({figure})."
    head = f"{system}: inner CV picks {layer_phrase(best.layer)} for {probe_title}"
    if best.layer == LAST_LAYER or last is None:
        detail = f"test {best.macro_f1:.3f} [{best.low:.3f}, {best.high:.3f}]"
    else:
        detail = f"test {best.macro_f1:.3f} vs {last.macro_f1:.3f} at the last layer, "
        untested = f"{best.macro_f1 - last.macro_f1:+.3f}, not tested"
        detail += _tested(best, last, pair, best_first) if pair else untested
    top = max(scores, key=lambda score: (score.macro_f1, _preference(score)))
    if top.layer != best.layer:
        detail += f"; the highest test figure, {top.macro_f1:.3f}, is at {layer_phrase(top.layer)}"
    return f"{head} ({detail})."
