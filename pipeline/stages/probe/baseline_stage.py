"""The baselines stage: majority class and TF-IDF probes on the corpus' own split, once per corpus and
probe settings, kept in ``W/baselines/`` so every comparison on the workdir reads against them.

The TF-IDF section also says what the model costs, to set beside the encoders' throughput: its feature
count and ``texts_per_second``, the fitted vectorizer's transform plus the fitted model's predictions
on the test texts. Its matrices are read from (or left in) the workdir's TF-IDF cache, which each run's
combined probe reads too."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.artifacts.corpus import corpus_hash, load_corpus
from pipeline.core.atomic import write_atomic, write_text_atomic
from pipeline.core.layout import Workdir
from pipeline.core.runner import Stage, Timings, run_stage
from pipeline.core.settings import ProbeSettings
from pipeline.core.stage_report import StageReport
from pipeline.stages.probe.baselines import BASELINES, TITLES, majority_predict, tfidf_baseline
from pipeline.stages.probe.data import choose_split, hyper_words, score
from pipeline.stages.probe.tfidf_cache import SplitTexts, corpus_tfidf

# what the baselines depend on: the split and the C search, not the kNN's k
SETTINGS_USED = ("C", "cv_folds", "max_iter", "include_val", "seed", "test_size", "bootstrap")


@dataclass(kw_only=True)
class BaselineReport(StageReport):
    stage = "baselines"
    baselines: Path
    predictions: Path
    split: str
    train_rows: int
    test_rows: int
    results: dict[str, dict[str, Any]]  # name -> classification report (+ "C" for TF-IDF)
    seconds: float

    def record(self) -> dict[str, Any]:
        """The manifest keeps the headline figures; baselines.json has the per-class ones."""
        keep = ("macro_f1", "macro_f1_ci", "accuracy")
        results = {name: {k: r[k] for k in keep} for name, r in self.results.items()}
        return {**super().record(), "results": results}

    def lines(self) -> list[str]:
        out = [f"{'fresh, kept' if self.skipped else 'wrote'} {self.baselines}"]
        for name in BASELINES:
            result, ci = self.results[name], self.results[name]["macro_f1_ci"]
            out.append(
                f"{TITLES[name]:>30}: macro-F1 {result['macro_f1']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]"
                f"  accuracy {result['accuracy']:.3f}  {hyper_words(result)}{_throughput(result)}".rstrip()
            )
        return out


def _throughput(result: dict[str, Any]) -> str:
    """'  74,713 features, 2,100 texts/s' where recorded (baselines.json of stage version 3 on)."""
    if "texts_per_second" not in result:
        return ""
    return f"  {result['features']:,} features, {result['texts_per_second']:,.0f} texts/s"


class BaselineStage(Stage[BaselineReport]):
    name = "baselines"

    def __init__(self, work: Workdir, settings: ProbeSettings) -> None:
        self.work, self.settings = work, settings

    @property
    def manifest(self) -> Path:
        return self.work.manifest

    def inputs(self) -> dict[str, Any]:
        used = {key: value for key, value in asdict(self.settings).items() if key in SETTINGS_USED}
        return {"corpus_sha256": corpus_hash(self.work), **used}

    def outputs(self) -> list[Path]:
        return [self.work.baselines, self.work.baseline_predictions]

    def rebuild(self, entry: dict[str, Any]) -> BaselineReport:
        data = json.loads(self.work.baselines.read_text(encoding="utf-8"))
        return BaselineReport.rebuild(
            data, baselines=self.work.baselines, predictions=self.work.baseline_predictions
        )

    def compute(self, inputs: dict[str, Any], timings: Timings) -> BaselineReport:
        settings = self.settings
        self.work.baselines.parent.mkdir(parents=True, exist_ok=True)
        with timings.part("seconds"):
            corpus = load_corpus(self.work, columns=["row_id", "text", "label", "split"])
            train, test, how = choose_split(corpus, settings)
            y = corpus["label"].astype(str).to_numpy()
            texts = corpus["text"].to_numpy()
            split = SplitTexts(list(texts[train]), y[train], list(texts[test]))
            tfidf = tfidf_baseline(
                corpus_tfidf(self.work, inputs["corpus_sha256"], split, settings),
                y[train],
                settings.C,
                settings.cv_folds,
                settings.seed,
                settings.max_iter,
            )
            predicted = {"majority": majority_predict(y[train], int(test.sum())), "tfidf": tfidf.predicted}
            results = score(y[test], predicted, settings)
            results["tfidf"] |= {
                "C": tfidf.choice.to_dict(),
                "features": tfidf.features,
                "texts_per_second": round(tfidf.texts_per_second, 1),  # on the test texts
            }
            frame = pd.DataFrame({"row_id": corpus["row_id"].to_numpy()[test], "label": y[test], **predicted})
            write_atomic(self.work.baseline_predictions, lambda tmp: frame.to_parquet(tmp, index=False))
        report = BaselineReport(
            baselines=self.work.baselines,
            predictions=self.work.baseline_predictions,
            split=how,
            train_rows=int(train.sum()),
            test_rows=int(test.sum()),
            results=results,
            seconds=timings.rounded()["seconds"],
        )
        payload = {**report.to_dict(), "settings": inputs}
        write_text_atomic(self.work.baselines, json.dumps(payload, indent=2, ensure_ascii=False))
        return report


def baselines(
    workdir: str | Path, settings: ProbeSettings | None = None, force: bool = False
) -> BaselineReport:
    """Majority-class and TF-IDF probes on the corpus, reused while the corpus and settings hold."""
    return run_stage(BaselineStage(Workdir.at(workdir), settings or ProbeSettings()), force)
