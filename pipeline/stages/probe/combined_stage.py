"""The combined stage: per run, one logistic probe on the TF-IDF features and the run's embeddings
together (``combined``), on the probes' split, so the report can say whether the encoder still adds
to n-grams. It writes ``tfidf_combined.json`` and ``tfidf_combined.parquet`` (row_id, label, combined:
the test rows in the order of the probe's and the baselines' predictions, for paired bootstraps).

The TF-IDF matrices are the same for every run on the corpus: they come from the workdir's TF-IDF
cache (``tfidf_cache``), built by whichever of the baselines and combined stages runs first."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.artifacts.corpus import corpus_hash, load_corpus
from pipeline.artifacts.run_layer import find_layer_run
from pipeline.artifacts.run_stage import RunStage
from pipeline.artifacts.runs import run_title
from pipeline.artifacts.store import load_embeddings
from pipeline.core.atomic import write_atomic, write_text_atomic
from pipeline.core.errors import EncajesError
from pipeline.core.layout import LAST_LAYER, Workdir
from pipeline.core.runner import Timings, run_stage
from pipeline.core.settings import DEFAULT_MODEL, ProbeSettings
from pipeline.core.stage_report import StageReport
from pipeline.stages.probe.baseline_stage import SETTINGS_USED
from pipeline.stages.probe.combined import Scales, combined_predict
from pipeline.stages.probe.data import choose_split, score
from pipeline.stages.probe.scores import LogisticResult
from pipeline.stages.probe.tfidf_cache import SplitTexts, corpus_tfidf


@dataclass(kw_only=True)
class CombinedReport(StageReport):
    stage = "combined"
    combined: Path
    predictions: Path
    model: str
    pooling: str
    layer: str
    split: str
    train_rows: int
    test_rows: int
    result: LogisticResult  # its ``refit`` is scikit-learn's arguments for the final fit
    scales: Scales
    features: dict[str, int]  # {"tfidf": columns, "embeddings": dim}
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """As tfidf_combined.json holds it: the classification report and C at the top level."""
        whole = super().to_dict()
        del whole["result"]
        return whole | self.result.to_dict() | {"scales": self.scales.to_dict()}

    @classmethod
    def rebuild(cls, recorded: dict[str, Any], **paths: Path) -> CombinedReport:
        """From tfidf_combined.json, the result and the scales typed again."""
        typed = {"result": LogisticResult.from_dict(recorded), "scales": Scales(**recorded["scales"])}
        return super().rebuild(recorded | typed, **paths)

    def record(self) -> dict[str, Any]:
        """The manifest keeps the headline figures; tfidf_combined.json has the per-class ones."""
        keep = ("split", "train_rows", "test_rows", "scales", "features", "seconds")
        return {key: self.to_dict()[key] for key in keep} | self.result.headline()

    def lines(self) -> list[str]:
        title = f"TF-IDF + {run_title(self.model, self.pooling, self.layer)}"
        ci = self.result.macro_f1_ci
        return [
            f"{'fresh, kept' if self.skipped else 'wrote'} {self.combined}",
            f"{title:>30}: macro-F1 {self.result.macro_f1:.3f} [{ci.low:.3f}, {ci.high:.3f}]  accuracy "
            f"{self.result.accuracy:.3f}  {self.result.hyper_words()}  scales TF-IDF "
            f"{self.scales.tfidf:.3f}, embeddings {self.scales.embeddings:.3f}",
        ]


class CombinedStage(RunStage[CombinedReport]):
    name = "combined"

    def inputs(self) -> dict[str, Any]:
        used = {key: value for key, value in asdict(self.settings).items() if key in SETTINGS_USED}
        return {
            "corpus_sha256": corpus_hash(self.work),
            "embeddings_sha256": self.run.embeddings_sha256,
            **used,
        }

    def rebuild(self, entry: dict[str, Any]) -> CombinedReport:
        paths = self.run.paths
        data = json.loads(paths.combined.read_text(encoding="utf-8"))
        return CombinedReport.rebuild(data, combined=paths.combined, predictions=paths.combined_predictions)

    def compute(self, inputs: dict[str, Any], timings: Timings) -> CombinedReport:
        paths, settings = self.run.paths, self.settings
        with timings.part("seconds"):
            corpus = load_corpus(self.work, columns=["row_id", "text", "label", "split"])
            embeddings = load_embeddings(paths.embeddings)
            if not np.array_equal(embeddings.row_ids, corpus["row_id"].to_numpy()):
                raise EncajesError(
                    f"{paths.embeddings} does not match the corpus row for row: run `encajes embed` again."
                )
            train, test, how = choose_split(corpus, settings)
            y, texts = corpus["label"].astype(str).to_numpy(), corpus["text"].to_numpy()
            split = SplitTexts(list(texts[train]), y[train], list(texts[test]))
            tfidf = corpus_tfidf(self.work, inputs["corpus_sha256"], split, settings)
            emb_train = embeddings.take(np.flatnonzero(train))
            outcome = combined_predict(
                tfidf,
                emb_train,
                embeddings.take(np.flatnonzero(test)),
                y[train],
                settings.C,
                settings.cv_folds,
                settings.seed,
                settings.max_iter,
            )
            scored = score(y[test], {"combined": outcome.predicted}, settings)["combined"]
            result = LogisticResult.from_dict(
                scored | {"C": outcome.choice.to_dict(), "refit": outcome.refit}
            )
            frame = pd.DataFrame(
                {"row_id": corpus["row_id"].to_numpy()[test], "label": y[test], "combined": outcome.predicted}
            )
            write_atomic(paths.combined_predictions, lambda tmp: frame.to_parquet(tmp, index=False))
        report = CombinedReport(
            combined=paths.combined,
            predictions=paths.combined_predictions,
            model=self.run.model,
            pooling=self.run.pooling,
            layer=self.run.layer,
            split=how,
            train_rows=int(train.sum()),
            test_rows=int(test.sum()),
            result=result,
            scales=outcome.scales,
            features={"tfidf": tfidf.features, "embeddings": int(emb_train.shape[1])},
            seconds=timings.rounded()["seconds"],
        )
        payload = report.to_dict() | {"settings": inputs}
        write_text_atomic(paths.combined, json.dumps(payload, indent=2, ensure_ascii=False))
        return report


def combined_run(
    workdir: str | Path,
    model: str = DEFAULT_MODEL,
    pooling: str | None = None,
    settings: ProbeSettings | None = None,
    force: bool = False,
    layer: str = LAST_LAYER,
) -> CombinedReport:
    """The probe on TF-IDF + one run's embeddings; writes tfidf_combined.json and .parquet in the run."""
    work = Workdir.at(workdir)
    stage = CombinedStage(work, find_layer_run(work, model, pooling, layer), settings or ProbeSettings())
    return run_stage(stage, force)
