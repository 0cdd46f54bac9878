"""Emoji labels by distant supervision, pure: the way SemEval-2018 Task 2 and TweetEval emoji were built.
A tweet holding exactly one distinct emoji of the chosen set is labelled by it, and every occurrence of it
is removed from the text so the label never leaks into the input.

An emoji is compared in its base form: variation selectors (U+FE0E/FE0F) and skin-tone modifiers
(U+1F3FB-1F3FF) are dropped, so ❤️ is ❤ and 👍🏽 is 👍; sequences (🇪🇸, 👨‍👩‍👧) stay whole. Sequences are
found with the ``emoji`` package, which follows Unicode's emoji data.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import emoji

from pipeline.stages.ingest.reject_reasons import Rejection, no_label_emoji, several_label_emojis

MODIFIERS = re.compile("[\ufe0e\ufe0f\U0001f3fb-\U0001f3ff]")


def base_form(found: str) -> str:
    """'❤️' -> '❤', '👍🏽' -> '👍' (a sequence joined by ZWJ keeps its joiners)."""
    return MODIFIERS.sub("", found) or found


def emojis_in(text: str) -> list[tuple[str, int, int]]:
    """(base form, start, end) of every emoji in the text, in order."""
    return [(base_form(m["emoji"]), m["match_start"], m["match_end"]) for m in emoji.emoji_list(text)]


def top_emojis(texts: Iterable[str], n: int) -> list[str]:
    """The n emojis found in the most tweets (each tweet counts an emoji once); ties by first seen."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(list(dict.fromkeys(found for found, _, _ in emojis_in(text))))
    return [found for found, _ in counts.most_common(n)]


def parse_emoji_set(value: str) -> int | list[str]:
    """``--label-from-emoji``: a count ('20') or a list ('❤,😂,🔥' or '❤😂🔥'), each in base form."""
    if value.strip().isdigit():
        return int(value)
    listed = [found for found, _, _ in emojis_in(value)]
    return list(dict.fromkeys(listed))


def label_by_emoji(text: str, chosen: set[str]) -> tuple[str | None, str, Rejection | None]:
    """(label, text without it, None) when the text holds exactly one distinct emoji of ``chosen``;
    (None, text, why not) otherwise."""
    found = emojis_in(text)
    hits = list(dict.fromkeys(base for base, _, _ in found if base in chosen))
    if not hits:
        return None, text, no_label_emoji()
    if len(hits) > 1:
        return None, text, several_label_emojis(hits)
    label = hits[0]
    kept, at = [], 0
    for base, start, end in found:
        if base == label:
            kept.append(text[at:start])
            at = end
    kept.append(text[at:])
    cleaned = re.sub(r"[ \t]{2,}", " ", "".join(kept)).strip()
    return label, cleaned, None


def leaks(text: str, label: str) -> bool:
    """Whether a row's own label emoji is still in its text (the label would leak into the input)."""
    target = base_form(label)
    return any(base == target for base, _, _ in emojis_in(text))
