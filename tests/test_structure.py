"""The project's shape holds: no import cycle (function-level imports included), imports that only run down
the floors of folders (``docs/ARCHITECTURE.md``), stage folders that never import each other, no file over
400 lines, no function over 60 lines, and only ``pipeline/core/layout.py`` spells workdir file names."""

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


FLOORS = (  # a room imports its own modules and rooms on lower floors, never a room beside or above it
    ("core",),
    ("encoders", "indexes", "render"),
    ("engines", "artifacts"),
    ("stages",),  # each stage folder is a room of its own
    ("search", "report", "tools"),
    ("serve", "pipeline.cli"),
    ("api", "cli"),
    ("pipeline",),  # the package itself: ``from pipeline import Workspace`` loads the API lazily
)
STAGE_MAY_IMPORT = {"core", "artifacts", "encoders", "engines", "indexes", "render"}


def room(module: str) -> str:
    """The folder a module lives in, as the floors name it (``stages.probe`` for a stage folder)."""
    parts = module.split(".")
    if parts[0] != "pipeline" or len(parts) == 1:
        return parts[0]
    if parts[1] == "stages":
        return ".".join(parts[1:3])
    if parts[1] == "cli":
        return "pipeline.cli"
    return parts[1]


def floor(name: str) -> int:
    key = "stages" if name.startswith("stages.") else name
    return next(level for level, rooms in enumerate(FLOORS) if key in rooms)


def import_graph() -> dict[str, set[str]]:
    modules = source_modules()
    return {name: imports_of(path, modules) for name, path in modules.items()}


def test_no_import_cycle_anywhere():
    graph = import_graph()
    embed = graph["pipeline.stages.embed.stage"]
    assert {"pipeline.core.runner", "pipeline.engines"} <= embed  # the walk finds imports
    assert "pipeline.engines.local" in graph["pipeline.engines"]  # function-level ones too
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert cycles(graph) == []


def test_every_module_lives_in_a_room_with_a_floor():
    assert room("pipeline.stages.probe.logistic") == "stages.probe" and floor("stages.probe") == 3
    assert room("pipeline.cli.options") == "pipeline.cli" and room("cli") == "cli"
    unplaced = []
    for module in source_modules():
        try:
            floor(room(module))
        except StopIteration:
            unplaced.append(module)
    assert unplaced == []


def test_imports_only_run_down_the_floors():
    """core imports no folder above it; nothing imports a room beside it or above it."""
    upward = [
        f"{module} -> {target}"
        for module, targets in import_graph().items()
        for target in targets
        if room(module) != room(target) and floor(room(target)) >= floor(room(module))
    ]
    assert upward == []


def test_stage_folders_import_only_the_floors_below_and_never_each_other():
    found = {}
    for module, targets in import_graph().items():
        if room(module).startswith("stages."):
            for target in targets:
                if room(target) != room(module):
                    found.setdefault(room(module), set()).add(room(target))
    assert set(found) == {f"stages.{name}" for name in ("ingest", "embed", "index", "probe", "plot")}
    assert {stage: rooms - STAGE_MAY_IMPORT for stage, rooms in found.items()} == {s: set() for s in found}


def test_each_folder_says_what_lives_there():
    """Every package's ``__init__`` opens with a docstring of its own."""
    silent = []
    for folder in ("pipeline", "indexes"):
        for init in (ROOT / folder).rglob("__init__.py"):
            doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
            if not doc or len(doc) < 20:
                silent.append(str(init.relative_to(ROOT)))
    assert silent == []


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
