"""The user cache of query encoders for ONNX Runtime: use the exported one, export it when missing, and
remember an export that failed (until the packages involved change), so torch answers instead."""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.core.layout import LAST_LAYER
from pipeline.core.settings import EmbedSettings
from pipeline.encoders.onnx_query import CHECK, OnnxQueryEncoder


def versions() -> str:
    """The packages an export depends on: a failed export is retried when they change."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("torch", "transformers", "onnxruntime", "onnxscript", "onnx"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            found.append(f"{package} -")
    return ", ".join(found)


def prepared_query_encoder(
    settings: EmbedSettings, folder: Path, layer: str = LAST_LAYER
) -> OnnxQueryEncoder | None:
    """The encoder in ``folder`` for a run of ``layer``, exported there first if missing (a layer other
    than the last: a graph of every hidden state); None (and a note on stderr) when the export or the
    loading fails, which is remembered until the packages involved change."""
    failed = folder.with_suffix(".failed")
    try:
        if not (folder / CHECK).exists():
            if failed.exists() and failed.read_text(encoding="utf-8").splitlines()[0] == versions():
                return None
            print(f"-> preparing a fast query encoder for {settings.model} (once; ~15 s)", file=sys.stderr)
            from pipeline.encoders.onnx_export import export_query_encoder

            export_query_encoder(settings, folder, layer)
        assert settings.pooling is not None and settings.prefix is not None
        return OnnxQueryEncoder.load(folder, settings.pooling, settings.prefix, settings.max_length, layer)
    except Exception as error:  # any exporter or runtime failure: remember it, answer with torch
        folder.parent.mkdir(parents=True, exist_ok=True)
        failed.write_text(f"{versions()}\n{type(error).__name__}: {error}\n", encoding="utf-8")
        print(f"   not possible for this model ({type(error).__name__}); using torch", file=sys.stderr)
        return None
