"""Who runs the encoder for the embed stage: one small interface, one file per engine.

- ``local``: this process (``engines/local.py``)
- ``ray``: a Ray Data actor pool, one model replica per actor (``engines/ray_data.py``)

Both encode the same chunks into the same shards, so a run made with one is fresh for the other. To add
an engine: implement ``Engine`` in a new file, name it in ``core.settings.ENGINES`` and ``make_engine``.
"""

from __future__ import annotations

from pipeline.core.settings import EngineSettings
from pipeline.engines.base import EncodeJob, Engine, EngineRun

__all__ = ["EncodeJob", "Engine", "EngineRun", "make_engine"]


def make_engine(settings: EngineSettings) -> Engine:
    if settings.name == "ray":
        from pipeline.engines.ray_data import RayEngine

        return RayEngine(settings)
    from pipeline.engines.local import LocalEngine

    return LocalEngine()
