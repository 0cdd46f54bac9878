"""What a command prints: one shape for every report.

A report is a dataclass built by keyword. It prints itself as text lines (``lines``) or as one JSON object
(``to_dict``); a stage's report also says what its manifest keeps (``record``) and is rebuilt from that
when the stage is fresh and skipped (``rebuild``).
"""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self


class Printable(Protocol):
    def to_dict(self) -> dict[str, Any]: ...

    def lines(self) -> list[str]: ...


@dataclass
class ResultReport:
    """A result that is already one JSON object (a benchmark's): subclasses say how it reads as text."""

    result: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.result

    def lines(self) -> list[str]:
        raise NotImplementedError


def plain(value: Any) -> Any:
    """Paths as strings, so a report is JSON as it is."""
    return str(value) if isinstance(value, Path) else value


@dataclass(kw_only=True)
class StageReport:
    """What one stage did, or found already done (``skipped``)."""

    stage: ClassVar[str] = ""
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, **{key: plain(value) for key, value in asdict(self).items()}}

    def lines(self) -> list[str]:
        raise NotImplementedError

    @classmethod
    def path_fields(cls) -> set[str]:
        """Fields that name files: derived from the workdir's layout, never recorded."""
        hints = typing.get_type_hints(cls)
        return {f.name for f in fields(cls) if hints[f.name] is Path}

    def record(self) -> dict[str, Any]:
        """What the manifest keeps of this report, enough to rebuild it when the stage is skipped."""
        drop = self.path_fields() | {"skipped"}
        return {key: value for key, value in self.to_dict().items() if key not in drop}

    @classmethod
    def rebuild(cls, recorded: dict[str, Any], **paths: Path) -> Self:
        """The report of a fresh stage from what its manifest recorded (unknown keys are ignored, so an
        older manifest still reads)."""
        names = {f.name for f in fields(cls)} - set(paths) - {"skipped"}
        return cls(**{k: v for k, v in recorded.items() if k in names}, **paths, skipped=True)
