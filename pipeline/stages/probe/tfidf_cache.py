"""The corpus' TF-IDF matrices kept in ``W/baselines/`` between stages: the baselines and every run's
combined probe need the same ones (the full split's and each inner-CV fold's), and building them costs
more than loading them.

A cache folder's name holds the hash of everything that shapes the matrices (the corpus, the split
settings, the folds, the recipe's version), so another corpus or split never reads it; its
``meta.json`` is written last and checks the folds again, so a half-written or foreign folder is
rebuilt. Matrices are scipy ``.npz`` files (no pickles); ``load_npz`` reads them without pickle.
Stages call this under the workdir's lock, so one writer at a time.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.atomic import write_atomic, write_text_atomic
from pipeline.core.hashing import params_hash
from pipeline.core.layout import Workdir
from pipeline.core.settings import ProbeSettings
from pipeline.stages.probe.baselines import TfidfFold, TfidfMatrices, TfidfSet, tfidf_set
from pipeline.stages.probe.estimators import inner_folds

CACHE_VERSION = 1  # bump when what ``tfidf_matrices`` computes changes: older caches are then not read
META = "meta.json"


@dataclass(frozen=True)
class SplitTexts:
    """The texts and labels of the probes' split, as the TF-IDF matrices are built from them."""

    train_texts: list[str]
    train_y: np.ndarray
    test_texts: list[str]


def cache_key(corpus_sha256: str, settings: ProbeSettings) -> str:
    """What the matrices depend on: the corpus, which rows train and test, and which folds tune C."""
    return params_hash(
        {
            "corpus_sha256": corpus_sha256,
            "include_val": settings.include_val,
            "test_size": settings.test_size,
            "seed": settings.seed,
            "cv_folds": settings.cv_folds,
            "tuned": settings.C is None,  # a fixed C needs no fold matrices
            "version": CACHE_VERSION,
        }
    )[:16]


def corpus_tfidf(work: Workdir, corpus_sha256: str, split: SplitTexts, settings: ProbeSettings) -> TfidfSet:
    """The split's TF-IDF matrices: read from the cache when it holds them, else built and kept (older
    caches of the workdir are removed: only the current corpus and settings are worth the disk)."""
    splits = inner_folds(split.train_y, settings.cv_folds, settings.seed) if settings.C is None else []
    folder = work.tfidf_cache(cache_key(corpus_sha256, settings))
    if (found := load_tfidf(folder, splits)) is not None:
        return found
    built = tfidf_set(split.train_texts, split.test_texts, splits)
    for stale in work.tfidf_caches():
        if stale != folder:
            shutil.rmtree(stale, ignore_errors=True)
    save_tfidf(folder, built)
    return built


def _held_hash(held: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(held, dtype=np.int64).tobytes()).hexdigest()


def save_tfidf(folder: Path, tfidf: TfidfSet) -> None:
    """Every matrix as its own ``.npz``, then ``meta.json``, whose presence says the folder is whole."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / META).unlink(missing_ok=True)
    _save_npz(folder / "train.npz", tfidf.full.train)
    _save_npz(folder / "test.npz", tfidf.full.test)
    for f, fold in enumerate(tfidf.folds):
        _save_npz(folder / f"fold{f}-fit.npz", fold.matrices.train)
        _save_npz(folder / f"fold{f}-held.npz", fold.matrices.test)
    meta = {
        "version": CACHE_VERSION,
        "transform_seconds": tfidf.full.transform_seconds,
        "fold_transform_seconds": [fold.matrices.transform_seconds for fold in tfidf.folds],
        "held_sha256": [_held_hash(fold.held) for fold in tfidf.folds],
    }
    write_text_atomic(folder / META, json.dumps(meta, indent=2))


def load_tfidf(folder: Path, splits: list[tuple[np.ndarray, np.ndarray]]) -> TfidfSet | None:
    """The cached set for these folds, or None: no cache, another version, other folds, a damaged file."""
    import scipy.sparse as sp

    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        if meta.get("version") != CACHE_VERSION or meta.get("held_sha256") != [
            _held_hash(held) for _, held in splits
        ]:
            return None
        full = TfidfMatrices(
            sp.load_npz(folder / "train.npz"), sp.load_npz(folder / "test.npz"), meta["transform_seconds"]
        )
        folds = tuple(
            TfidfFold(
                rows,
                held,
                TfidfMatrices(
                    sp.load_npz(folder / f"fold{f}-fit.npz"),
                    sp.load_npz(folder / f"fold{f}-held.npz"),
                    meta["fold_transform_seconds"][f],
                ),
            )
            for f, (rows, held) in enumerate(splits)
        )
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError, zipfile.BadZipFile):
        return None
    if any(fold.matrices.train.shape[0] != len(fold.rows) for fold in folds):
        return None
    return TfidfSet(full, folds)


def _save_npz(target: Path, matrix: Any) -> None:
    import scipy.sparse as sp

    def write(tmp: Path) -> None:
        with tmp.open("wb") as handle:  # a handle: save_npz would add ".npz" to a temporary's name
            sp.save_npz(handle, matrix.tocsr())

    write_atomic(target, write)
