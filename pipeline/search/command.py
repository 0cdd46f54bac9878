"""``encajes search``: open a run's searcher, answer a text, a corpus row or a file of queries, and
return the hits as a result that prints itself (text or JSON)."""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.artifacts.label_names import load_label_names
from pipeline.core.errors import EncajesError
from pipeline.core.layout import LAST_LAYER, Workdir
from pipeline.core.serve_settings import SearchSettings
from pipeline.core.settings import DEFAULT_MODEL
from pipeline.search.filters import parse_where
from pipeline.search.searcher import Searcher


@dataclass
class SearchResult:
    """Hits of one or more queries, as ``encajes search`` prints them."""

    hits: pd.DataFrame
    run: str
    k: int
    index_built: bool
    label_names: dict[str, str] = field(default_factory=dict)  # printed instead of label codes
    layer: str = LAST_LAYER  # the run's hidden layer, which the queries were embedded at

    def groups(self) -> list[tuple[str, pd.DataFrame]]:
        """Each query asked, in order, with its hits (none where a filter or min score left none)."""
        asked = self.hits.attrs.get("queries") or list(dict.fromkeys(self.hits["query"]))
        return [(q, self.hits[self.hits["query"] == q]) for q in dict.fromkeys(asked)]

    def to_dict(self) -> dict[str, Any]:
        results = [
            {"query": q, "hits": group.drop(columns="query").to_dict(orient="records")}
            for q, group in self.groups()
        ]
        return {
            "stage": "search",
            "run": self.run,
            "layer": self.layer,
            "k": self.k,
            "index_built": self.index_built,
            "results": results,
        }

    def lines(self) -> list[str]:
        import click

        width = max(shutil.get_terminal_size((120, 20)).columns, 60)
        out = []
        for q, group in self.groups():
            out += [
                click.style(f"query: {q}", bold=True),
                f"{'rank':>4}  {'score':>6}  {'row_id':>7}  {'label':<8}  text",
            ]
            for hit in group.itertuples():
                text = " ".join(str(hit.text).split())
                label = self.label_names.get(str(hit.label), hit.label) if hit.label else "-"
                line = f"{hit.rank:>4}  {hit.score:6.3f}  {hit.row_id:>7}  {label!s:<8}  {text}"
                out.append(line[:width])
                out.extend(detail_lines(hit, width))
            if group.empty:
                out.append(
                    "  no hits: no row passes the filter and minimum score asked (see --where, --min-score)"
                )
            out.append("")
        return out


def detail_lines(hit: Any, width: int) -> list[str]:
    """Under a hit: its kept fields on one line, and the near-duplicates folded into it."""
    out = []
    fields = getattr(hit, "fields", None)
    if isinstance(fields, dict) and fields:
        shown = "  ".join(f"{name}={value}" for name, value in fields.items() if value is not None)
        out.extend(textwrap.wrap(shown, width, initial_indent=" " * 33, subsequent_indent=" " * 33))
    similar = getattr(hit, "similar", None)
    if isinstance(similar, list) and similar:
        rows = ", ".join(map(str, similar[:8])) + (", ..." if len(similar) > 8 else "")
        out.append((" " * 33 + f"+{len(similar)} similar (rows {rows})")[:width])
    return out


def say(text: str) -> None:
    """A note for the person at the terminal, on stderr: stdout stays the results (or one JSON object)."""
    import click

    click.echo(f"-> {text}", err=True)


def read_queries(path: Path) -> list[str]:
    """One query per non-empty line."""
    queries = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not queries:
        raise EncajesError(f"{path}: no queries (one per line).")
    return queries


def search(
    workdir: str | Path,
    model: str = DEFAULT_MODEL,
    pooling: str | None = None,
    k: int = 10,
    query: str | None = None,
    row: str | None = None,
    queries_file: str | Path | None = None,
    layer: str = LAST_LAYER,
    options: SearchSettings | None = None,
) -> SearchResult:
    """What ``encajes search`` asks: neighbours of a text, of a corpus row, of rows liked and disliked,
    or of each line of a file, in the run of (model, pooling, layer); a query is embedded at that run's
    layer. ``options``: k, --where, dedup, min score, offset, positive / negative rows."""
    options = options or SearchSettings(k=k)
    asked = [query is not None, row is not None, queries_file is not None, bool(options.positive)]
    if sum(asked) != 1:
        raise EncajesError("Give exactly one of: a QUERY text, --id ROW, --positive ROW, or --queries FILE.")
    if options.negative and not options.positive:
        raise EncajesError("--negative needs --positive: less like those, more like which?")
    searcher = Searcher.open(str(workdir), model, pooling, on_build=say, layer=layer)
    searcher.fast_queries = True
    try:
        ask = searcher.ask(
            options.k, parse_where(options.where), options.dedup, options.min_score, options.offset
        )
    except (OverflowError, ValueError) as error:
        raise EncajesError(f"--where: {error}") from None
    if options.positive:
        hits = searcher.search_like(options.positive, options.negative, ask)
    elif row is not None:
        hits = searcher.search_row(row, ask=ask)
    else:
        texts = [query] if query is not None else read_queries(Path(queries_file))  # type: ignore[arg-type]
        hits = searcher.search_texts(texts, ask=ask)
    names = load_label_names(Workdir.at(workdir))
    run = searcher.run
    return SearchResult(hits, run.paths.root.name, options.k, searcher.index_built, names, run.layer)
