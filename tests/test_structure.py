"""The project's shape holds: no import cycle (function-level imports included), no file over 400 lines,
no function over 60 lines, and only ``pipeline/layout.py`` spells the names of workdir files."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "indexes")
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60


def project_files() -> list[Path]:
    files = [ROOT / "cli.py"]
    for folder in (*PACKAGES, "tests", "eval", "bench"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules() -> dict[str, Path]:
    paths = [ROOT / "cli.py", *(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))]
    return {module_name(path): path for path in paths}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules ``path`` imports anywhere: at the top, inside functions, under TYPE_CHECKING;
    relative imports resolved against the module's package."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            source = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:  # `from package import module` imports the module
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in modules else source)
    return {name for name in found if name in modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), or modules importing themselves."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_anywhere():
    modules = source_modules()
    graph = {name: imports_of(path, modules) for name, path in modules.items()}
    assert {"pipeline.runner", "pipeline.engines"} <= graph["pipeline.embed"]  # the walk finds imports
    assert "pipeline.engines.local" in graph["pipeline.engines"]  # function-level ones too
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert cycles(graph) == []


def test_no_stage_imports_another_stage():
    """Stages share the encoder library, the run finder and the runner, never each other's modules."""
    stages = {f"pipeline.{name}" for name in ("ingest", "embed", "index", "probe", "plot", "baseline_stage")}
    modules = source_modules()
    for stage in stages:
        assert not (imports_of(modules[stage], modules) & (stages - {stage})), stage


def test_files_and_functions_stay_small():
    long_files, long_functions = [], []
    for path in project_files():
        text = path.read_text(encoding="utf-8")
        if len(text.splitlines()) > MAX_FILE_LINES:
            long_files.append(f"{path.relative_to(ROOT)}: {len(text.splitlines())}")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines}")
    assert long_files == [] and long_functions == []


def test_only_layout_names_workdir_files():
    """The artifact names appear as string literals in ``pipeline/layout.py`` and nowhere else (folder
    names where they are joined to a path)."""
    names = re.compile(
        r"""["'](corpus\.parquet|rejects\.csv|manifest\.json|embeddings\.pt|vectors\.npy|index\.faiss"""
        r"""|index_ids\.npy|probe\.json|predictions\.parquet|confusion\.png|umap\.(parquet|png|html)"""
        r"""|report\.(md|html|json)|\.encajes\.lock|file-hashes\.json)["']|/\s*["'](runs|shards|report)["']"""
    )
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in source_modules().values()
        if path.name != "layout.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if names.search(line)
    ]
    assert offenders == []
