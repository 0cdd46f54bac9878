"""A probe's figures as typed values: what the probe stage produces and the report reads, with names
instead of string keys. ``to_dict`` is the exact dict ``probe.json`` and the manifest hold (so files
written before these types read back unchanged), ``from_dict`` reads one back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Self

from pipeline.stages.probe.estimators import Choice

HEADLINE = ("macro_f1", "macro_f1_ci", "accuracy", "weighted_f1")  # the figures a summary keeps


@dataclass(frozen=True)
class Interval:
    """Macro-F1's percentile bootstrap interval; ``level``, ``resamples`` and ``seed`` default to
    ``bootstrap_macro_f1``'s own, for a dict that gives only the bounds."""

    low: float
    high: float
    level: float = 0.95
    resamples: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class ClassScores:
    """One class's precision, recall and F1 on the test rows, and how many test rows it has."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ProbeScores:
    """A classification report with its macro-F1 interval: one probe (or baseline) on the test rows.
    The fields keep ``classification_report``'s keys, so the dict form is the one written all along."""

    macro_f1: float
    accuracy: float
    weighted_f1: float
    labels: list[str]
    per_class: dict[str, ClassScores]
    confusion: list[list[int]]  # rows = true class, columns = predicted, in ``labels`` order
    macro_f1_ci: Interval

    choice_name: ClassVar[str] = ""  # the hyper-parameter the probe records ('C' or 'k'), if any

    @property
    def choice(self) -> Choice | None:
        """How the probe's hyper-parameter was set, where it records one (the field ``choice_name``)."""
        return getattr(self, self.choice_name, None) if self.choice_name else None

    def hyper_words(self) -> str:
        """'C = 16 (3-fold CV)'; '' when the probe records no hyper-parameter."""
        return self.choice.words(self.choice_name) if self.choice else ""

    def headline(self) -> dict[str, Any]:
        """What the manifest keeps: the headline figures and the hyper-parameter, no per-class tables."""
        whole = self.to_dict()
        return {key: whole[key] for key in (*HEADLINE, self.choice_name) if key in whole}

    def to_dict(self) -> dict[str, Any]:
        """The dict probe.json holds; an unset optional field (a C a probe.json never had) is left out."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """From ``to_dict`` or its JSON; keys this type does not know are ignored."""
        names = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in names}
        values["per_class"] = {label: ClassScores(**s) for label, s in data["per_class"].items()}
        values["macro_f1_ci"] = Interval(**data["macro_f1_ci"])
        if values.get(cls.choice_name) is not None:
            values[cls.choice_name] = Choice.from_dict(values[cls.choice_name])
        return cls(**values)


@dataclass(frozen=True)
class LogisticResult(ProbeScores):
    """The logistic probe: its scores, its C, and how scikit-learn refits it to the same optimum."""

    C: Choice | None = None
    refit: dict[str, Any] | None = None  # keyword arguments of scikit-learn's ``LogisticRegression``

    choice_name: ClassVar[str] = "C"


@dataclass(frozen=True)
class KnnResult(ProbeScores):
    """The kNN probe: its scores and its k."""

    k: Choice | None = None

    choice_name: ClassVar[str] = "k"
