"""Reliability: one writer per workdir, status tells fresh/stale/missing, a hard kill resumes exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pipeline.artifacts.status import workdir_status
from pipeline.core.errors import EncajesError
from pipeline.core.lock import workdir_lock
from pipeline.stages.ingest.stage import ingest
from tests.conftest import SAMPLE_ROWS, write_csv

ROOT = Path(__file__).resolve().parents[1]


def test_a_second_writer_is_refused_with_the_holder_named(tmp_path, sample_csv):
    holder = hold_lock(tmp_path / "w", 30)
    try:
        with pytest.raises(EncajesError, match=rf"pid {holder.pid}.*another --workdir"):
            ingest([sample_csv], tmp_path / "w")
    finally:
        holder.kill()
        holder.wait()
    assert ingest([sample_csv], tmp_path / "w").rows_kept == 8  # a killed holder leaves no stale lock


def hold_lock(workdir: Path, seconds: float) -> subprocess.Popen:
    """Another process that holds the workdir's lock for ``seconds``; returns once it has it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from pipeline.core.lock import workdir_lock\n"
            "with workdir_lock(Path(sys.argv[1])):\n"
            "    print('locked', flush=True); time.sleep(float(sys.argv[2]))",
            str(workdir),
            str(seconds),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_writer_waits_for_the_lock_with_encajes_lock_wait(tmp_path, sample_csv, monkeypatch):
    holder = hold_lock(tmp_path / "w", 2.0)
    try:
        monkeypatch.setenv("ENCAJES_LOCK_WAIT", "0.5")  # shorter than the holder: refused after waiting
        start = time.monotonic()
        with pytest.raises(EncajesError, match=rf"pid {holder.pid}"):
            ingest([sample_csv], tmp_path / "w")
        assert time.monotonic() - start >= 0.5
        monkeypatch.setenv("ENCAJES_LOCK_WAIT", "60")  # longer: it waits, then writes
        assert ingest([sample_csv], tmp_path / "w").rows_kept == 8
        assert holder.poll() is not None, "it wrote while the holder still held the lock"
    finally:
        holder.kill()
        holder.wait()


def test_a_fresh_stage_is_read_while_another_process_writes(tmp_path, sample_csv):
    """Readers never wait: a skipped stage needs no lock."""
    assert not ingest([sample_csv], tmp_path / "w").skipped
    holder = hold_lock(tmp_path / "w", 30)
    try:
        assert ingest([sample_csv], tmp_path / "w").skipped
    finally:
        holder.kill()
        holder.wait()


def test_a_stage_made_by_the_writer_it_waited_for_is_not_made_again(tmp_path, sample_csv, monkeypatch):
    """After waiting for the lock the runner checks again: what the other process just wrote is used."""
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from pipeline.core.lock import workdir_lock\n"
            "from pipeline.stages.ingest.stage import ingest\n"
            "with workdir_lock(Path(sys.argv[1])):\n"
            "    print('locked', flush=True); time.sleep(1.5); ingest([sys.argv[2]], sys.argv[1])",
            str(tmp_path / "w"),
            str(sample_csv),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "locked"
        monkeypatch.setenv("ENCAJES_LOCK_WAIT", "60")
        report = ingest([sample_csv], tmp_path / "w")  # not fresh yet: it waits for the writer
        assert writer.wait(timeout=60) == 0
        assert report.skipped and report.rows_kept == 8
    finally:
        writer.kill()
        writer.wait()


def test_the_lock_is_reentrant_within_a_process(tmp_path, sample_csv):
    with workdir_lock(tmp_path / "w"):
        assert ingest([sample_csv], tmp_path / "w").rows_kept == 8


def test_status_follows_changes(tmp_path, tiny_model):
    from pipeline.core.settings import EmbedSettings
    from pipeline.stages.embed.stage import embed_corpus
    from pipeline.stages.index.stage import index_run

    csv_path = write_csv(tmp_path / "t.csv", SAMPLE_ROWS)
    assert workdir_status(tmp_path / "w").ingest["state"] == "missing"
    ingest([csv_path], tmp_path / "w")
    embed_corpus(tmp_path / "w", EmbedSettings(model=str(tiny_model)), progress=False)
    index_run(tmp_path / "w", str(tiny_model))
    (run,) = workdir_status(tmp_path / "w").runs.values()
    assert run["embed"]["state"] == run["index"]["state"] == "fresh" and run["probe"]["state"] == "missing"

    write_csv(csv_path, [(*row[:1], row[1] + " hoy", *row[2:]) for row in SAMPLE_ROWS])
    assert workdir_status(tmp_path / "w").ingest["state"] == "stale"
    ingest([csv_path], tmp_path / "w")
    (run,) = workdir_status(tmp_path / "w").runs.values()
    assert run["embed"] == {"state": "stale", "why": "the corpus texts changed"}
    assert run["index"]["state"] == "stale"


def test_sigkill_during_embed_then_rerun_equals_an_uninterrupted_run(tmp_path, tiny_model):
    rows = [(f"r{i}", f"{SAMPLE_ROWS[i % 8][1]} {i}", "a", "train") for i in range(600)]
    csv_path = write_csv(tmp_path / "t.csv", rows)
    command = [
        sys.executable,
        "-m",
        "cli",
        "embed",
        "-m",
        str(tiny_model),
        "--no-progress",
        "--chunk-rows",
        "25",
    ]
    for name in ("clean", "killed"):
        ingest([csv_path], tmp_path / name)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run([*command, "-w", str(tmp_path / "clean")], cwd=ROOT, env=env, check=True)

    victim = subprocess.Popen([*command, "-w", str(tmp_path / "killed")], cwd=ROOT, env=env)
    shards = tmp_path / "killed" / "runs"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(shards.glob("*/shards/*.npz"))) < 3:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    done = len(list(shards.glob("*/shards/*.npz")))
    assert 3 <= done < 24, "kill it while shards are being written"
    subprocess.run([*command, "-w", str(tmp_path / "killed")], cwd=ROOT, env=env, check=True)

    def vectors(name):
        (path,) = (tmp_path / name / "runs").glob("*/embeddings.pt")
        return torch.load(path, weights_only=True)

    clean, resumed = vectors("clean"), vectors("killed")
    assert torch.equal(clean["embeddings"], resumed["embeddings"])  # bitwise, CPU fp32
    assert torch.equal(clean["row_ids"], resumed["row_ids"])


def test_search_refuses_an_index_built_for_another_run(tmp_path, sample_csv, tiny_model):
    import json
    import shutil

    from pipeline import Workspace

    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    for pooling in ("mean", "cls"):
        ws.embed(model=str(tiny_model), pooling=pooling, progress=False)
        ws.index(model=str(tiny_model), pooling=pooling)
    mean_dir, cls_dir = (next((tmp_path / "w" / "runs").glob(f"*__{p}")) for p in ("mean", "cls"))
    for name in ("index.faiss", "index_ids.npy"):
        shutil.copy(cls_dir / name, mean_dir / name)  # a cls index where the mean one should be...
    mean_manifest = json.loads((mean_dir / "manifest.json").read_text())
    cls_index = json.loads((cls_dir / "manifest.json").read_text())["index"]
    cls_index["inputs_hash"] = mean_manifest["index"]["inputs_hash"]  # ...that claims to be fresh
    mean_manifest["index"] = cls_index
    (mean_dir / "manifest.json").write_text(json.dumps(mean_manifest))
    with pytest.raises(EncajesError, match=r"built for .* / cls"):
        Workspace(tmp_path / "w").search("hola", model=str(tiny_model), pooling="mean")


def test_an_embed_that_cannot_load_its_model_leaves_no_run_behind(tmp_path, sample_csv, tiny_model):
    import shutil

    from pipeline.core.errors import EncajesError
    from pipeline.core.settings import EmbedSettings
    from pipeline.stages.embed.stage import embed_corpus
    from pipeline.stages.ingest.stage import ingest

    broken = tmp_path / "broken-model"
    broken.mkdir()
    for name in ("config.json", "vocab.txt", "tokenizer_config.json"):
        if (tiny_model / name).exists():
            shutil.copy(tiny_model / name, broken / name)  # no weights
    ingest([sample_csv], tmp_path / "w")
    with pytest.raises((EncajesError, OSError)):
        embed_corpus(tmp_path / "w", EmbedSettings(model=str(broken)), progress=False)
    runs = tmp_path / "w" / "runs"
    assert not runs.exists() or not any(runs.iterdir())
