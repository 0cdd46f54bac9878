"""Issue 4 check: the report's logistic-regression macro-F1 equals scikit-learn's on the saved embeddings.

Independently of encajes' probe code: loads each run's ``embeddings.pt`` (``weights_only=True``),
fits ``LogisticRegression(C=1.0, max_iter=1000)`` on the train rows and scores macro-F1 on the test rows,
then prints it beside the figure in ``report.json``.

    .venv/bin/python eval/check_compare.py work/semeval-es
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score


def main(workdir: Path) -> None:
    corpus = pd.read_parquet(workdir / "corpus.parquet")
    report = json.loads((workdir / "report" / "report.json").read_text(encoding="utf-8"))
    out = []
    for run in report["runs"]:
        run_dir = workdir / "runs" / f"{run['model']}__{run['pooling']}"
        saved = torch.load(run_dir / "embeddings.pt", weights_only=True)
        x = saved["embeddings"].numpy()
        frame = corpus.set_index("row_id").loc[saved["row_ids"].numpy()]
        train, test = (frame["split"] == "train").to_numpy(), (frame["split"] == "test").to_numpy()
        y = frame["label"].astype(str).to_numpy()
        pred = LogisticRegression(C=1.0, max_iter=1000).fit(x[train], y[train]).predict(x[test])
        sklearn_f1 = f1_score(y[test], pred, average="macro")
        out.append(
            {
                "run": f"{run['model']} · {run['pooling']}",
                "report_lr_macro_f1": round(run["lr_macro_f1"], 4),
                "sklearn_lr_macro_f1": round(float(sklearn_f1), 4),
                "abs_difference": round(abs(run["lr_macro_f1"] - sklearn_f1), 4),
            }
        )
    print(
        json.dumps(
            {"workdir": str(workdir), "runs": out, "tests": report["tests"]}, indent=2, ensure_ascii=False
        )
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "work/semeval-es"))
