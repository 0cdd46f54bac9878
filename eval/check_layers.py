"""Checks of a layer sweep, a learning curve and the near-duplicate counts, independently of encajes'
embedding and probe code.

1. Each layer run of MODEL · POOLING: the hidden states are extracted again with transformers
   (``output_hidden_states=True``), pooled the same way (mean over real tokens or token 0; ``last4`` and
   ``first-last`` average the pooled layers), normalised; scikit-learn's ``LogisticRegression`` is
   refitted at the C the probe reports (its ``refit`` parameters) on the train rows and scored on the test
   rows. Its macro-F1 must equal the probe's within 0.2 points.
2. Each run's near-duplicate count equals a brute-force count on its saved embeddings.
3. Every learning curve in the workdir (runs and baselines) used the same subsamples.

    .venv/bin/python eval/check_layers.py W -m e5-small --pooling mean [--layers 1,6,last]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from pipeline.core.layers import hidden_states
from pipeline.encoders.models import resolve_model


def extract(model: str, texts: list[str], prefix: str, max_length: int, pooling: str) -> list[torch.Tensor]:
    """Every hidden state pooled, for every text: [states][rows, dim] (float32, not normalised)."""
    from transformers import AutoModel, AutoTokenizer

    source = resolve_model(model).source
    tokenizer = AutoTokenizer.from_pretrained(source)
    network = AutoModel.from_pretrained(source).eval()
    pooled: list[list[torch.Tensor]] = []
    with torch.inference_mode():
        for begin in range(0, len(texts), 64):
            batch = tokenizer(
                [prefix + t for t in texts[begin : begin + 64]],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            states = network(**batch, output_hidden_states=True).hidden_states
            mask = batch["attention_mask"].unsqueeze(-1).float()
            for i, state in enumerate(states):
                value = state[:, 0] if pooling == "cls" else (state * mask).sum(1) / mask.sum(1).clamp(min=1)
                if len(pooled) <= i:
                    pooled.append([])
                pooled[i].append(value.float())
    return [torch.cat(parts) for parts in pooled]


def refit_f1(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, params: dict) -> float:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        model = LogisticRegression(random_state=0, **params).fit(x[train], y[train])
    return float(f1_score(y[test], model.predict(x[test]), average="macro"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("workdir", type=Path)
    parser.add_argument("-m", "--model", required=True)
    parser.add_argument("--pooling", default="mean")
    parser.add_argument("--layers", default=None, help="Only these layer runs (default: every one).")
    args = parser.parse_args()
    work = args.workdir
    corpus = pd.read_parquet(work / "corpus.parquet")
    y = corpus["label"].astype(str).to_numpy()
    train, test = (corpus["split"] == "train").to_numpy(), (corpus["split"] == "test").to_numpy()
    runs = {}
    for folder in sorted((work / "runs").iterdir()):
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        inputs = manifest["embed"]["inputs"]
        if (
            inputs["model"] == args.model
            and inputs["pooling"] == args.pooling
            and (folder / "probe.json").exists()
        ):
            runs[inputs.get("layer", "last")] = (folder, manifest)
    wanted = args.layers.split(",") if args.layers else list(runs)
    counted = [m for _, m in runs.values() if "layer_count" in m["embed"]["outputs"]["settings"]]
    inputs, count = counted[0]["embed"]["inputs"], counted[0]["embed"]["outputs"]["settings"]["layer_count"]
    print(f"extracting {len(corpus):,} texts x {count + 1} hidden states with transformers ...", flush=True)
    pooled = extract(
        args.model, corpus["text"].tolist(), inputs["prefix"], inputs["max_length"], args.pooling
    )
    worst = 0.0
    for layer in wanted:
        folder, manifest = runs[layer]
        probe = json.loads((folder / "probe.json").read_text(encoding="utf-8"))
        indices = hidden_states(layer, count)
        combined = torch.stack([pooled[i] for i in indices]).mean(0)
        x = torch.nn.functional.normalize(combined, dim=-1).numpy()
        theirs = refit_f1(x, y, train, test, probe["logistic"]["refit"])
        ours = probe["logistic"]["macro_f1"]
        worst = max(worst, abs(theirs - ours))
        C = probe["logistic"]["refit"]["C"]
        print(
            f"layer {layer:>10}: probe {ours:.4f}, scikit-learn on transformers' vectors {theirs:.4f} "
            f"(C = {C:g}), |diff| = {100 * abs(theirs - ours):.2f} points",
            flush=True,
        )
    print(f"largest difference: {100 * worst:.2f} points ({'PASS' if worst <= 0.002 else 'FAIL'}: <= 0.2)")
    check_twins(work, corpus, train, test)
    check_curves(work)


def check_twins(work: Path, corpus: pd.DataFrame, train: np.ndarray, test: np.ndarray) -> None:
    for folder in sorted((work / "runs").iterdir()):
        probe_file = folder / "probe.json"
        if not probe_file.exists() or "leakage" not in (probe := json.loads(probe_file.read_text())):
            continue
        x = torch.load(folder / "embeddings.pt", weights_only=True)["embeddings"].float()
        nearest = (x[test] @ x[train].T).max(dim=1).values.numpy()
        threshold = probe["leakage"]["threshold"]
        brute = int((nearest >= threshold).sum())
        ok = "PASS" if brute == probe["leakage"]["twins"] else "FAIL"
        print(f"{folder.name}: twins {probe['leakage']['twins']} (probe), {brute} (brute force): {ok}")


def check_curves(work: Path) -> None:
    files = [*sorted((work / "runs").glob("*/curve.json")), work / "baselines" / "curve.json"]
    hashes = {f: json.loads(f.read_text())["subsamples_sha256"] for f in files if f.exists()}
    same = len(set(hashes.values())) == 1
    print(f"learning curves: {len(hashes)} files, subsamples identical: {'PASS' if same else 'FAIL'}")


if __name__ == "__main__":
    main()
