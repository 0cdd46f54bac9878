"""A stage's recorded version decides freshness beside its inputs: an entry from an older version of a
stage's computation is computed again (and ``status`` says why), entries from the same version and
entries written before versions were kept (read as version 1) stay fresh, and a rebuild that fails is a
bug that surfaces instead of a silent recompute."""

from __future__ import annotations

import json

import pytest

from pipeline.artifacts.status import workdir_status
from pipeline.core.manifest import STAGE_VERSIONS, VERSION_KEY, params_hash
from pipeline.core.settings import IndexSettings, ProbeSettings


@pytest.fixture
def workdir(tmp_path, sample_csv, tiny_model):
    from pipeline import Workspace

    ws = Workspace(tmp_path / "w")
    ws.ingest([sample_csv])
    run = ws.embed(model=str(tiny_model), progress=False)
    return tmp_path / "w", str(tiny_model), run.run_dir


def probe(workdir, model):
    from pipeline.stages.probe.stage import probe_run

    return probe_run(workdir, model, settings=ProbeSettings(bootstrap=100, C=1.0, k=3))


def index(workdir, model):
    from pipeline.stages.index.stage import index_run

    return index_run(workdir, model, settings=IndexSettings())


def test_an_entry_of_an_older_stage_version_is_recomputed_and_status_says_why(workdir, monkeypatch):
    root, model, run_dir = workdir
    assert not probe(root, model).skipped and not index(root, model).skipped
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["probe"][VERSION_KEY] == STAGE_VERSIONS["probe"]
    assert probe(root, model).skipped  # same version, same inputs: fresh

    monkeypatch.setitem(STAGE_VERSIONS, "probe", STAGE_VERSIONS["probe"] + 1)
    (state,) = workdir_status(root).runs.values()
    assert state["probe"]["state"] == "stale" and "older version of the probe stage" in state["probe"]["why"]
    assert state["index"]["state"] == "fresh"  # other stages keep their version
    assert not probe(root, model).skipped
    assert index(root, model).skipped
    assert (
        json.loads((run_dir / "manifest.json").read_text())["probe"][VERSION_KEY] == STAGE_VERSIONS["probe"]
    )


def test_an_entry_written_before_versions_were_kept_counts_as_version_one(workdir):
    root, model, run_dir = workdir
    assert STAGE_VERSIONS["index"] == 1 and STAGE_VERSIONS["probe"] > 1
    index(root, model), probe(root, model)
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    for stage in ("index", "probe"):
        del manifest[stage][VERSION_KEY]
    path.write_text(json.dumps(manifest))
    assert index(root, model).skipped  # version 1 now as then: fresh
    assert not probe(root, model).skipped  # an unnumbered probe may come from the older solver


def test_a_failing_rebuild_surfaces_but_a_damaged_output_is_recomputed(workdir, monkeypatch):
    from pipeline.stages.index.stage import IndexStage

    root, model, run_dir = workdir
    probe(root, model), index(root, model)
    (run_dir / "probe.json").write_text("{ damaged")
    assert not probe(root, model).skipped
    assert json.loads((run_dir / "probe.json").read_text())["logistic"]

    def broken(self, entry):
        return entry["no such key"]

    monkeypatch.setattr(IndexStage, "rebuild", broken)
    with pytest.raises(KeyError, match="no such key"):
        index(root, model)


def test_a_run_whose_embeddings_vanish_before_the_lock_says_to_embed_again(workdir):
    """Another process may remove a run between finding it and taking the workdir's lock: the stage
    re-reads the run under the lock and says what to do instead of failing on a missing file."""
    from pipeline.artifacts.runs import find_run
    from pipeline.core.errors import EncajesError
    from pipeline.core.layout import Workdir
    from pipeline.core.runner import run_stage
    from pipeline.stages.index.stage import IndexStage

    root, model, run_dir = workdir
    work = Workdir.at(root)
    stage = IndexStage(work, find_run(work, model), IndexSettings())
    (run_dir / "embeddings.pt").unlink()
    with pytest.raises(EncajesError, match="are gone: run `encajes embed` again"):
        run_stage(stage)
    assert not (run_dir / "index.faiss").exists()


def test_stages_recorded_before_kept_fields_stay_fresh_while_the_corpus_file_is_the_same(workdir):
    """Probes recorded the whole corpus file's hash before kept fields existed; they record texts,
    labels and splits now. A corpus re-ingested unchanged (the same file) keeps such a probe fresh, in
    the runner and in `status`; relabelled, it is computed again."""
    root, model, run_dir = workdir
    probe(root, model)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    ingest_outputs = json.loads((root / "manifest.json").read_text())["ingest"]["outputs"]
    assert manifest["probe"]["inputs"]["corpus_sha256"] == ingest_outputs["labels_sha256"]

    def record(corpus_sha256: str) -> None:
        manifest["probe"]["inputs"]["corpus_sha256"] = corpus_sha256
        manifest["probe"]["inputs_hash"] = params_hash(manifest["probe"]["inputs"])
        (run_dir / "manifest.json").write_text(json.dumps(manifest))

    record(ingest_outputs["corpus_sha256"])  # as probes recorded it before
    assert probe(root, model).skipped
    (state,) = workdir_status(root).runs.values()
    assert state["probe"]["state"] == "fresh"
    record("f" * 64)  # another corpus file
    (state,) = workdir_status(root).runs.values()
    assert state["probe"]["state"] == "stale" and not probe(root, model).skipped
