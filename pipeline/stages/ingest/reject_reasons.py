"""Why ingest did not keep a row, as a typed value: the kind (``RejectReason``), the message ``rejects.csv``
shows for that one row, and the label the ingest report counts it under. Each kind is built by one
function here, so the report's counts come from the kind, never from reading the message back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum


class RejectReason(Enum):
    """Every kind of reject; the value is the label the report counts it under (unless the kind's label
    names more than the kind: a field count, a split value)."""

    EMPTY_TEXT = "empty text"
    NO_VISIBLE_TEXT = "no visible text"
    NUL_BYTES = "text contains NUL bytes"
    UNKNOWN_SPLIT = "unknown split"
    BROKEN_QUOTING = "broken quoting"
    FIELD_COUNT = "wrong number of fields"
    DUPLICATE_ID = "duplicate id"
    INVALID_JSON = "invalid JSON"
    NOT_AN_OBJECT = "not an object"
    NO_TEXT_FIELD = "no text field"
    NO_LABEL_EMOJI = "no emoji of the label set"
    SEVERAL_LABEL_EMOJIS = "several emojis of the label set"
    NOTHING_LEFT = "nothing left once the label emoji is removed"
    BAD_FIELD = "bad field"


@dataclass(frozen=True)
class Rejection:
    """One row's reason: its kind, the message for that row, and (where it names more than the kind) the
    label it is counted under."""

    reason: RejectReason
    message: str
    label: str = ""

    @property
    def counted_as(self) -> str:
        """The line of the ingest report's reject counts this row adds to."""
        return self.label or self.reason.value


def _plain(reason: RejectReason) -> Rejection:
    """A kind whose message is its label."""
    return Rejection(reason, reason.value)


def empty_text() -> Rejection:
    return _plain(RejectReason.EMPTY_TEXT)


def no_visible_text() -> Rejection:
    return Rejection(
        RejectReason.NO_VISIBLE_TEXT, "no visible text (only zero-width, control or format characters)"
    )


def nul_bytes() -> Rejection:
    return _plain(RejectReason.NUL_BYTES)


def unknown_split(value: str) -> Rejection:
    """Counted per value, as shown up to its first ' (' (the way the counts have always read)."""
    shown = repr(value)
    return Rejection(
        RejectReason.UNKNOWN_SPLIT,
        f"unknown split {shown} (use train, val or test)",
        f"unknown split {shown.split(' (')[0]}",
    )


def broken_quoting(error: object) -> Rejection:
    return Rejection(
        RejectReason.BROKEN_QUOTING,
        f"broken quoting ({error}); fix the quotes of the record on this line",
    )


def field_count(expected: int, found: int) -> Rejection:
    """Counted per (expected, found): a file whose rows all run one field long says so in one line."""
    message = f"expected {expected} fields, found {found}"
    return Rejection(RejectReason.FIELD_COUNT, message, message)


def duplicate_id(row_id: str, first: str) -> Rejection:
    """``first``: where the id was first seen ('a.csv line 3')."""
    return Rejection(RejectReason.DUPLICATE_ID, f"duplicate id {row_id!r} (first on {first})")


def invalid_json(problem: str) -> Rejection:
    return Rejection(RejectReason.INVALID_JSON, f"invalid JSON ({problem})")


def not_an_object() -> Rejection:
    return _plain(RejectReason.NOT_AN_OBJECT)


def no_text_field(looked_for: Sequence[str]) -> Rejection:
    return Rejection(RejectReason.NO_TEXT_FIELD, "no text field (looked for " + ", ".join(looked_for) + ")")


def no_label_emoji() -> Rejection:
    return _plain(RejectReason.NO_LABEL_EMOJI)


def several_label_emojis(found: Sequence[str]) -> Rejection:
    return Rejection(
        RejectReason.SEVERAL_LABEL_EMOJIS, f"several emojis of the label set ({' '.join(found)})"
    )


def nothing_left() -> Rejection:
    return _plain(RejectReason.NOTHING_LEFT)


def bad_field(name: str, message: str) -> Rejection:
    """A kept field whose value is not of its kind; counted per field ("bad created_at"), since one field
    gone wrong (a date format) is one fix."""
    return Rejection(RejectReason.BAD_FIELD, message, f"bad {name}")


@dataclass(frozen=True)
class RejectedRow:
    """One line of ``rejects.csv`` (source, line, message, raw), its reason kept typed for the counts."""

    source: str
    line: int
    why: Rejection
    raw: str
