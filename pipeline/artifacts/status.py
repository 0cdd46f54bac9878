"""What in a workdir is fresh, stale or missing, from the manifests and the artifacts' current hashes.

Nothing is loaded, converted or downloaded to find out, and the network is not asked: a model's weights
are checked where they already are on this machine (a folder, an installed alias, a converted e5-small),
and a hub id against the commit its main points to in the local Hugging Face cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.artifacts.corpus import corpus_hashes, texts_hash
from pipeline.artifacts.runs import run_title
from pipeline.artifacts.store import vectors_file_problem
from pipeline.core.errors import EncajesError
from pipeline.core.hashing import file_sha256
from pipeline.core.layout import LAST_LAYER, RunPaths, Workdir
from pipeline.core.manifest import read_manifest, stage_entry, version_problem
from pipeline.encoders.models import folder_fingerprint, hub_revision, identify

STAGES = ("embed", "index", "probe", "plot")


def _state(state: str, why: str = "") -> dict[str, str]:
    return {"state": state, "why": why}


def ingest_status(work: Workdir) -> dict[str, str]:
    entry = stage_entry(work.manifest, "ingest")
    if entry is None or not work.corpus.exists():
        return _state("missing", f"run `encajes ingest FILES -w {work.root}`")
    if why := version_problem(entry, "ingest"):
        return _state("stale", why)
    for source in entry["inputs"]["files"]:
        path = Path(source["path"])
        if not path.exists():
            return _state("fresh", f"{path.name} is gone; the corpus is what it was")
        if file_sha256(path) != source["sha256"]:
            return _state("stale", f"{path.name} changed since it was ingested")
    return _state("fresh")


def embed_status(work: Workdir, run: RunPaths, embed: dict[str, Any] | None) -> dict[str, str]:
    shards = list(run.shards.glob("*.npz")) if run.shards.exists() else []
    if embed is None or not run.embeddings.exists():
        why = f"interrupted: {len(shards)} shard(s) done, rerun embed to resume" if shards else "run embed"
        return _state("missing", why)
    if why := version_problem(embed, "embed"):
        return _state("stale", why)
    if embed["inputs"].get("texts_sha256") != texts_hash(work):
        return _state("stale", "the corpus texts changed")
    if file_sha256(run.embeddings) != embed.get("embeddings_sha256"):
        return _state("stale", "embeddings.pt was modified after it was written")
    if problem := vectors_file_problem(run.embeddings):
        return _state("stale", problem)
    return weights_state(embed["inputs"])


def weights_state(inputs: dict[str, Any]) -> dict[str, str]:
    """Whether the model's weights are still the ones the vectors were made with."""
    try:
        model = identify(inputs["model"])
    except EncajesError as error:
        return _state("fresh", f"model not checked: {error}")
    recorded = inputs.get("weights") or ""
    if model.folder is None and model.spec is None:  # a hub id
        if recorded.endswith("@unknown"):
            return _state("fresh", "hub model embedded before its commit was recorded: embed --force pins it")
        revision = hub_revision(model.key, local_only=True)
        if revision is None:
            return _state("fresh", "hub model not in the local cache: its commit is not re-checked")
        if recorded != f"hub:{model.key}@{revision}":
            return _state("stale", "the model's main is at a newer commit (local Hugging Face cache)")
        return _state("fresh")
    folder = model.folder or (model.spec.folder_if_ready() if model.spec else None)
    if folder is None:
        return _state("fresh", f"{model.key} is not installed or converted here: weights not checked")
    if folder_fingerprint(folder) != recorded:
        return _state("stale", "the model's weights changed")
    return _state("fresh")


def run_status(work: Workdir, run: RunPaths) -> dict[str, dict[str, str]]:
    manifest = read_manifest(run.manifest)
    embed = manifest.get("embed")
    out = {"embed": embed_status(work, run, embed)}
    embeddings_hash = (embed or {}).get("embeddings_sha256")
    which = f" -w {work.root}" + (which_run(embed["inputs"]) if embed else "")
    for stage in ("index", "probe", "plot"):
        entry = manifest.get(stage)
        if entry is None or not all(path.exists() for path in run.outputs(stage)):
            out[stage] = _state("missing", f"run `encajes {stage}{which}`")
        elif why := version_problem(entry, stage):
            out[stage] = _state("stale", why)
        elif out["embed"]["state"] != "fresh" or entry["inputs"].get("embeddings_sha256") != embeddings_hash:
            out[stage] = _state("stale", "its embeddings changed or are stale")
        elif stage != "index" and entry["inputs"].get("corpus_sha256") not in corpus_hashes(work):
            out[stage] = _state("stale", "the corpus (labels or splits) changed")
        else:
            out[stage] = _state("fresh")
    return out


def which_run(inputs: dict[str, Any]) -> str:
    """The options that pick this run: ``-m M --pooling P`` (and ``--layer L`` for another layer)."""
    layer = inputs.get("layer", LAST_LAYER)
    return f" -m {inputs['model']} --pooling {inputs['pooling']}" + (
        "" if layer == LAST_LAYER else f" --layer {layer}"
    )


def title_of(run: RunPaths) -> str:
    """'minilm · mean · layer 6' from the run's embed entry; the folder's name without one."""
    entry = stage_entry(run.manifest, "embed")
    if entry is None:
        return run.root.name
    inputs = entry["inputs"]
    return run_title(inputs["model"], inputs["pooling"], inputs.get("layer", LAST_LAYER))


def baselines_status(work: Workdir) -> dict[str, str]:
    """The comparison baselines (majority class, TF-IDF): made by `compare`, per corpus."""
    entry = stage_entry(work.manifest, "baselines")
    if entry is None or not (work.baselines.exists() and work.baseline_predictions.exists()):
        return _state("missing", f"made by `encajes compare -w {work.root}`")
    if why := version_problem(entry, "baselines"):
        return _state("stale", why)
    if entry["inputs"].get("corpus_sha256") not in corpus_hashes(work):
        return _state("stale", "the corpus changed; the next compare remakes them")
    return _state("fresh")


@dataclass
class WorkdirStatus:
    workdir: Path
    ingest: dict[str, str]
    runs: dict[str, dict[str, dict[str, str]]]
    baselines: dict[str, str] = field(default_factory=lambda: _state("missing"))
    titles: dict[str, str] = field(default_factory=dict)  # run folder -> "minilm · mean · layer 6"

    def to_dict(self) -> dict[str, Any]:
        return {
            "workdir": str(self.workdir),
            "ingest": self.ingest,
            "baselines": self.baselines,
            "runs": self.runs,
            "titles": self.titles,
        }

    def lines(self) -> list[str]:
        import click

        colours = {"fresh": "green", "stale": "yellow", "missing": "red"}

        def show(name: str, state: dict[str, str]) -> str:
            label = click.style(f"{state['state']:<8}", fg=colours[state["state"]])
            return f"  {name:<10} {label} {state['why']}"

        out = [str(self.workdir), show("ingest", self.ingest), show("baselines", self.baselines)]
        for run, stages in self.runs.items():
            title = self.titles.get(run, run)
            out += [run if title == run else f"{run}  ({title})", *(show(s, stages[s]) for s in STAGES)]
        return out


def workdir_status(workdir: str | Path) -> WorkdirStatus:
    work = Workdir.at(workdir)
    ingest = ingest_status(work)
    folders = [] if ingest["state"] == "missing" else work.run_folders()
    runs = {r.root.name: run_status(work, r) for r in folders}
    titles = {r.root.name: title_of(r) for r in folders}
    base = _state("missing", "ingest first") if ingest["state"] == "missing" else baselines_status(work)
    return WorkdirStatus(work.root, ingest, runs, base, titles)
