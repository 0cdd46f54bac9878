"""The probe's sections are typed: ``LogisticResult`` and ``KnnResult`` are built by the probe stage,
serialise to exactly the dict probe.json and the manifest have always held, and read back equal."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.core.manifest import stage_entry
from pipeline.core.settings import ProbeSettings
from pipeline.stages.probe.estimators import Choice, EmbeddingFit, choice_words
from pipeline.stages.probe.metrics import bootstrap_macro_f1, classification_report
from pipeline.stages.probe.scores import ClassScores, Interval, KnnResult, LogisticResult, ProbeScores

TRUTH = ["a", "a", "b", "b", "c", "c", "a", "b"]
PREDICTED = ["a", "b", "b", "b", "c", "a", "a", "c"]


def scored() -> dict:
    """One probe's section as the stage builds it: the classification report and its interval."""
    return classification_report(TRUTH, PREDICTED) | {
        "macro_f1_ci": bootstrap_macro_f1(TRUTH, PREDICTED, n_resamples=100, seed=3)
    }


def same_json(a: dict, b: dict) -> bool:
    """Byte for byte, key order included: what a file written from each would hold."""
    return json.dumps(a, indent=2, ensure_ascii=False) == json.dumps(b, indent=2, ensure_ascii=False)


def test_logistic_and_knn_sections_round_trip_to_the_dict_the_stage_writes():
    tuned = Choice(16.0, True, (0.25, 1.0, 16.0), (0.5, 0.6, 0.7), 3)
    logistic = scored() | {"C": tuned.to_dict(), "refit": EmbeddingFit().params(16.0)}
    knn = scored() | {"k": Choice(10, False).to_dict()}
    for typed, section in ((LogisticResult, logistic), (KnnResult, knn)):
        result = typed.from_dict(section)
        assert result.to_dict() == section and same_json(result.to_dict(), section)
        written = json.loads(json.dumps(section))  # lists where the choice has tuples
        assert typed.from_dict(written) == result and same_json(typed.from_dict(written).to_dict(), section)
    result = LogisticResult.from_dict(logistic)
    assert result.choice == tuned and result.refit == EmbeddingFit().params(16.0)
    assert result.per_class["a"] == ClassScores(**logistic["per_class"]["a"])
    assert result.macro_f1_ci == Interval(**logistic["macro_f1_ci"]) and result.macro_f1_ci.resamples == 100
    assert result.labels == ["a", "b", "c"] and result.confusion == logistic["confusion"]
    assert result.hyper_words() == "C = 16 (3-fold CV, top of the grid)"
    assert KnnResult.from_dict(knn).hyper_words() == "k = 10 (fixed)"


def test_a_section_without_its_choice_stays_without_it():
    """A hand-made or older section (no C, bounds only): read, and written back without a C."""
    section = classification_report(TRUTH, PREDICTED) | {"macro_f1_ci": {"low": 0.1, "high": 0.9}}
    result = LogisticResult.from_dict(section)
    assert result.C is None and result.refit is None and result.hyper_words() == ""
    assert "C" not in result.to_dict() and "refit" not in result.to_dict()
    assert isinstance(result, ProbeScores) and result.macro_f1_ci.low == 0.1


def test_choice_reads_back_and_says_how_it_was_set_as_before():
    for choice in (Choice(64.0, True, (1.0, 64.0), (0.4, 0.5), 3), Choice(1.0, False, note="too few rows")):
        assert Choice.from_dict(json.loads(json.dumps(choice.to_dict()))) == choice
        assert choice.words("C") == choice_words(choice.to_dict(), "C")
    assert Choice(1.0, False, note="too few rows").words() == "1 (default: too few rows)"


@pytest.fixture
def probed(tmp_path, sample_csv):
    from pipeline import Workspace
    from pipeline.stages.probe.stage import probe_run
    from tests.conftest import write_vectors_run

    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(ws.corpus), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    paths = write_vectors_run(tmp_path / "w", vectors)
    settings = ProbeSettings(bootstrap=100)
    report = probe_run(tmp_path / "w", "synthetic/vectors", settings=settings)
    return report, paths, probe_run(tmp_path / "w", "synthetic/vectors", settings=settings)


def test_the_stage_writes_its_typed_sections_as_dicts_and_reads_them_back(probed):
    report, paths, again = probed
    assert isinstance(report.logistic, LogisticResult) and isinstance(report.knn, KnnResult)
    written = json.loads(paths.probe.read_text(encoding="utf-8"))
    for name, result in (("logistic", report.logistic), ("knn", report.knn)):
        assert json.loads(json.dumps(result.to_dict())) == written[name]
        assert type(result).from_dict(written[name]) == result
    assert set(written["logistic"]) == {*scored(), "C", "refit"} and set(written["knn"]) == {*scored(), "k"}
    assert report.to_dict()["logistic"] == report.logistic.to_dict()
    assert again.skipped and again.logistic == report.logistic and again.knn == report.knn
    assert again.lines()[1:] == report.lines()[1:]
    recorded = stage_entry(paths.manifest, "probe")["outputs"]
    keep = ["macro_f1", "macro_f1_ci", "accuracy", "weighted_f1"]
    assert recorded["logistic"] == {key: written["logistic"][key] for key in [*keep, "C"]}
    assert recorded["knn"] == {key: written["knn"][key] for key in [*keep, "k"]}
