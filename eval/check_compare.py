"""Check of a comparison report against scikit-learn, independently of encajes' probe code.

For each run in ``W/report/report.json``: loads its ``embeddings.pt`` (``weights_only=True``), refits
scikit-learn's ``LogisticRegression`` at the C the report states (once with the refit parameters the
probe writes, newton-cg at a tight tolerance, once with scikit-learn's default lbfgs) on the train rows
and scores macro-F1 on the test rows; fits the fixed protocol (C = 1.0, lbfgs, max_iter 1000) the same
way; checks that the TF-IDF baseline row and the pair table with Holm-adjusted p-values are there.
With ``--time``, also times the probe stage fixed (``--C 1.0 --k 10``) against tuned, alternated in one
process, and reports the median ratio.

    .venv/bin/python eval/check_compare.py W [--time 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import warnings
from pathlib import Path

import pandas as pd
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score


def refit(x, y, train, test, **params) -> tuple[float, object]:
    """Test macro-F1 of scikit-learn's model refitted on the train rows, and its test predictions."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        pred = LogisticRegression(random_state=0, **params).fit(x[train], y[train]).predict(x[test])
    return float(f1_score(y[test], pred, average="macro")), pred


def check_run(workdir: Path, corpus: pd.DataFrame, run: dict, probe_dir: Path) -> dict:
    probe = json.loads((probe_dir / "probe.json").read_text(encoding="utf-8"))
    saved = torch.load(probe_dir / "embeddings.pt", weights_only=True)
    x = saved["embeddings"].float().numpy()
    frame = corpus.set_index("row_id").loc[saved["row_ids"].numpy()]
    train, test = (frame["split"] == "train").to_numpy(), (frame["split"] == "test").to_numpy()
    y = frame["label"].astype(str).to_numpy()
    stated = probe["logistic"]["refit"]
    stated_params, stated_predictions = refit(x, y, train, test, **stated)
    default_solver, _ = refit(x, y, train, test, C=stated["C"], max_iter=1000)
    fixed, _ = refit(x, y, train, test, C=1.0, max_iter=1000)
    reported = run["lr_macro_f1"]
    probe_predictions = (
        pd.read_parquet(probe_dir / "predictions.parquet").set_index("row_id")["logistic"].astype(str)
    )
    ours = probe_predictions.loc[frame.index[test]].to_numpy()
    return {
        "run": f"{run['model']} · {run['pooling']}",
        "C": stated["C"],
        "tuned": probe["logistic"]["C"]["tuned"],
        "report_lr_macro_f1": round(reported, 4),
        "sklearn_refit_stated": round(stated_params, 4),
        "sklearn_refit_lbfgs": round(default_solver, 4),
        "sklearn_fixed_C1": round(fixed, 4),
        "test_predictions_equal_to_stated_refit": round(float((ours == stated_predictions).mean()), 4),
        "within_half_point": max(abs(reported - stated_params), abs(reported - default_solver)) <= 0.005,
        "tuned_ge_fixed": reported >= fixed,
    }


def time_probes(workdir: Path, model: str, pooling: str, rounds: int) -> dict:
    """Probe stage seconds, fixed then tuned, alternated so drift on a shared machine hits both."""
    from pipeline.core.settings import ProbeSettings
    from pipeline.stages.probe.stage import probe_run

    fixed, tuned = [], []
    for _ in range(rounds):
        fixed.append(probe_run(workdir, model, pooling, ProbeSettings(C=1.0, k=10), force=True).seconds)
        tuned.append(probe_run(workdir, model, pooling, ProbeSettings(), force=True).seconds)
    ratios = [t / f for f, t in zip(fixed, tuned, strict=True)]
    return {"run": f"{model} · {pooling}", "fixed_s": fixed, "tuned_s": tuned,
            "median_ratio": round(statistics.median(ratios), 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--time", type=int, default=0, help="Fixed/tuned probe pairs to time per run.")
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    corpus = pd.read_parquet(workdir / "corpus.parquet")
    report = json.loads((workdir / "report" / "report.json").read_text(encoding="utf-8"))
    folders = {p.name: p for p in (workdir / "runs").iterdir()}
    runs = []
    for run in report["runs"]:
        folder = next(p for name, p in folders.items() if name.endswith(f"__{run['pooling']}")
                      and json.loads((p / "probe.json").read_text())["model"] == run["model"])  # fmt: skip
        runs.append(check_run(workdir, corpus, run, folder))
    pairs = report.get("pairs", {})
    out = {
        "runs": runs,
        "tfidf_baseline_row": "tfidf" in report.get("baselines", {}),
        "pair_table_with_holm": bool(pairs.get("logistic")) and all("p_holm" in p for p in pairs["logistic"]),
        "timing": [time_probes(workdir, r["model"], r["pooling"], args.time) for r in report["runs"]]
        if args.time
        else [],
    }
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
