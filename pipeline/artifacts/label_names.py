"""Label names: corpora often code labels as integers and name them in another column (``emoji``,
``label_name``, ``name``) or a mapping file. Ingest keeps code -> name in ``W/label_names.json``;
reports, maps and confusion matrices show the names."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from pipeline.core.atomic import write_text_atomic
from pipeline.core.errors import EncajesError
from pipeline.core.layout import Workdir

NAME_COLUMNS = ("emoji", "label_name", "name")  # tried in this order when --label-name-col is not given


def names_from_counts(counts: Mapping[tuple[str, str], int]) -> dict[str, str]:
    """Each label's most frequent non-empty name over (label, name) counts (rows disagree in noisy
    files), when it differs from the label."""
    named: dict[str, Counter[str]] = {}
    for (label, name), count in counts.items():
        if label and name and name.strip() and name.strip() != label:
            named.setdefault(label, Counter())[name.strip()] += count
    return {label: names.most_common(1)[0][0] for label, names in sorted(named.items())}


def read_mapping(path: Path) -> dict[str, str]:
    """A CSV with a ``label`` column and a name column (``emoji``, ``label_name`` or ``name``)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:  # -sig: a BOM from a spreadsheet
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise EncajesError(f"{path}: cannot read the label names ({error}).") from None
    header = list(rows[0]) if rows else []
    column = next((c for c in NAME_COLUMNS if c in header), None)
    if "label" not in header or column is None:
        raise EncajesError(
            f"{path}: a label-names file needs a 'label' column and one of {list(NAME_COLUMNS)}; "
            f"its columns are {header}."
        )
    return names_from_counts(Counter((row["label"].strip(), row[column]) for row in rows))


def write_label_names(work: Workdir, names: dict[str, str]) -> None:
    """Written even when empty, so names of an earlier corpus never outlive it."""
    write_text_atomic(work.label_names, json.dumps(names, indent=1, ensure_ascii=False))


def load_label_names(work: Workdir) -> dict[str, str]:
    if not work.label_names.exists():
        return {}
    try:
        data = json.loads(work.label_names.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def names_input(names: dict[str, str]) -> dict[str, str]:
    """A stage input for what it draws with the names: nothing when there are none, so workdirs without
    names keep their fresh artifacts."""
    if not names:
        return {}
    return {"label_names_sha256": hashlib.sha256(json.dumps(names, sort_keys=True).encode()).hexdigest()}
