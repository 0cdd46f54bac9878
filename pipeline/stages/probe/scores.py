"""A probe's figures as typed values: what the probe stage produces and the report reads, with names
instead of string keys. ``to_dict`` is the exact dict ``probe.json`` and the manifest hold (so files
written before these types read back unchanged), ``from_dict`` reads one back."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Self

from pipeline.stages.probe.grids import Choice

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


@dataclass(frozen=True)
class CleanScores:
    """One probe's macro-F1 on the test rows without a training twin, with its own bootstrap interval;
    ``outside``: it lies outside the interval of the whole test set's macro-F1."""

    rows: int
    macro_f1: float
    macro_f1_ci: Interval
    outside: bool

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CleanScores:
        return cls(**(data | {"macro_f1_ci": Interval(**data["macro_f1_ci"])}))


@dataclass(frozen=True)
class Leakage:
    """Near-duplicate leakage: how many test rows have a training row at cosine ``threshold`` or above
    (a twin, which flatters kNN most), and the probes scored without them. ``flagged``: for either
    probe, the score without twins lies outside the whole test set's 95% interval. The clean scores are
    None when every test row has a twin."""

    threshold: float
    twins: int
    test_rows: int
    logistic: CleanScores | None
    knn: CleanScores | None
    flagged: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Leakage:
        clean = {
            name: CleanScores.from_dict(data[name]) if data.get(name) else None
            for name in ("logistic", "knn")
        }
        return cls(**(data | clean))

    def headline(self) -> dict[str, Any]:
        """What the manifest keeps: the count, the flag and the two clean macro-F1s."""
        return {
            "twins": self.twins,
            "flagged": self.flagged,
            "logistic_macro_f1": self.logistic.macro_f1 if self.logistic else None,
            "knn_macro_f1": self.knn.macro_f1 if self.knn else None,
        }

    def words(self) -> str:
        """'near-duplicates: N of M test rows have a training twin (cosine >= t); without them LR f1 [low,
        high], kNN f1 [low, high]', and which probe is flagged."""
        had = f"{self.twins:,} of {self.test_rows:,} test rows have a training twin"
        had += f" (cosine >= {self.threshold:g})"
        if self.logistic is None or self.knn is None:
            return f"near-duplicates: {had}: no test rows without one to score"
        scored = ", ".join(
            f"{name} {s.macro_f1:.3f} [{s.macro_f1_ci.low:.3f}, {s.macro_f1_ci.high:.3f}]"
            for name, s in (("LR", self.logistic), ("kNN", self.knn))
        )
        out = [name for name, s in (("LR", self.logistic), ("kNN", self.knn)) if s.outside]
        level = self.logistic.macro_f1_ci.level
        flag = (
            f"; FLAGGED: {' and '.join(out)} outside the full test set's {level:.0%} interval"
            if self.flagged
            else ""
        )
        return f"near-duplicates: {had}; without them {scored}{flag}"
