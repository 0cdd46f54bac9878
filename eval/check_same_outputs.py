"""Every command's ``--json`` output on one corpus, saved so that two builds can be compared.

``record`` runs the chain command by command (ingest, embed per model x pooling, index, search by text,
by row and from a file, probe, plot, compare, status, models, similarity) in a fresh workdir and writes
each command's JSON, the tensors of every ``embeddings.pt`` and a ``status --json`` of the workdir as
the build found it. ``diff`` compares two such folders: JSON equal apart from key order, timings,
dates, library versions and the workdir's own path; embeddings bitwise equal.

    python eval/check_same_outputs.py record OUT --workdir W --model minilm --pooling mean CSV...
    python eval/check_same_outputs.py diff OUT_A OUT_B

Run it with the build to record on ``PYTHONPATH`` (e.g. a ``git worktree`` of the parent commit) to
record before and after a change with the same virtual environment. ``--reuse`` records on a workdir
made by another build instead (its ``status`` says what that build's artifacts look like to this one).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

VOLATILE = {"seconds", "timings", "finished", "versions", "elapsed", "peak_rss_mb", "peak_rss_gb", "png"}
VOLATILE_SUFFIXES = ("_s", "per_second")  # build_s, load_model_s, texts_per_second: times, not results
QUERIES = ["qué calor hace hoy", "me encanta la playa", "odio los lunes"]


def encajes(args: list[str], out: Path, name: str) -> None:
    """Run one command with --json; save its output (or its error) under ``name``."""
    code = "import sys; from cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", code, *args, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    print(f"{name}: exit {done.returncode}", file=sys.stderr)
    (out / f"{name}.json").write_text(
        json.dumps({"exit": done.returncode, "stdout": _parsed(done.stdout)}, indent=1, ensure_ascii=False)
    )


def _parsed(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def record(args: argparse.Namespace) -> None:
    out, w = Path(args.out), args.workdir
    out.mkdir(parents=True, exist_ok=True)
    if args.reuse:
        encajes(["status", "-w", w], out, "status_before")
    runs = [(m, p) for m in args.model for p in args.pooling]
    encajes(["ingest", *args.files, "-w", w], out, "ingest")
    for model, pooling in runs:
        tag = f"{Path(model).name}__{pooling}"
        run = ["-w", w, "-m", model, "--pooling", pooling]
        encajes(["embed", "-w", w, "--model", model, "--pooling", pooling], out, f"embed_{tag}")
        encajes(["index", *run], out, f"index_{tag}")
        encajes(["search", *run, QUERIES[0], "-k", "5"], out, f"search_text_{tag}")
        encajes(["search", *run, "--id", "3", "-k", "5"], out, f"search_id_{tag}")
        queries = out / "queries.txt"
        queries.write_text("\n".join(QUERIES) + "\n", encoding="utf-8")
        encajes(["search", *run, "--queries", str(queries)], out, f"search_file_{tag}")
        encajes(["probe", *run], out, f"probe_{tag}")
        encajes(["plot", *run], out, f"plot_{tag}")
    grid = [x for m in args.model for x in ("-m", m)] + [x for p in args.pooling for x in ("--pooling", p)]
    encajes(["compare", "-w", w, *grid], out, "compare")
    encajes(["status", "-w", w], out, "status")
    encajes(["models"], out, "models")
    png = out / "similarity.png"
    encajes(["similarity", "-m", args.model[0], "--png", str(png), *QUERIES], out, "similarity")
    digests = {}
    for pt in sorted(Path(w).glob("runs/*/embeddings.pt")):
        digests[pt.parent.name] = _tensor_digest(pt)
    (out / "embeddings.digest").write_text(json.dumps(digests, indent=1))


def _tensor_digest(path: Path) -> dict[str, str]:
    import torch

    saved = torch.load(path, weights_only=True)
    return {
        key: hashlib.sha256(value.contiguous().numpy().tobytes()).hexdigest()
        for key, value in sorted(saved.items())
        if isinstance(value, torch.Tensor)
    }


def normalised(value: object, workdirs: tuple[str, ...]) -> object:
    if isinstance(value, dict):
        return {
            k: normalised(v, workdirs)
            for k, v in sorted(value.items())
            if k not in VOLATILE and not k.endswith(VOLATILE_SUFFIXES)
        }
    if isinstance(value, list):
        return [normalised(v, workdirs) for v in value]
    if isinstance(value, str):
        for w in workdirs:
            value = value.replace(w, "W")
        return value
    if isinstance(value, float):
        return round(value, 12)
    return value


def differences_in(a: object, b: object, where: str = "") -> list[tuple[str, object, object]]:
    """The key paths at which two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d for k in sorted(set(a) | set(b)) for d in differences_in(a.get(k), b.get(k), f"{where}.{k}")
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences_in(x, y, f"{where}[{i}]")
        ]
    return [] if a == b else [(where or ".", a, b)]


def diff(args: argparse.Namespace) -> int:
    a, b = Path(args.a), Path(args.b)
    names = sorted({p.name for p in a.glob("*.json")} | {p.name for p in b.glob("*.json")})
    marks = tuple(args.workdir_text)
    differences = 0
    for name in names:
        if not (a / name).exists() or not (b / name).exists():
            print(f"{name}: only in {'B' if not (a / name).exists() else 'A'}")
            differences += 1
            continue
        left = normalised(json.loads((a / name).read_text()), marks)
        right = normalised(json.loads((b / name).read_text()), marks)
        same = left == right
        differences += not same
        print(f"{name}: {'same' if same else 'DIFFERENT'}")
        for where, x, y in differences_in(left, right)[:8]:
            shown = [json.dumps(value, ensure_ascii=False)[:200] for value in (x, y)]
            print(f"  {where}: A {shown[0]} | B {shown[1]}")
    same_vectors = (a / "embeddings.digest").read_text() == (b / "embeddings.digest").read_text()
    print(f"embeddings: {'bitwise equal' if same_vectors else 'DIFFERENT'}")
    differences += not same_vectors
    print(f"{len(names) + 1 - differences} of {len(names) + 1} outputs the same")
    return 1 if differences else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    rec = verbs.add_parser("record")
    rec.add_argument("out")
    rec.add_argument("files", nargs="+")
    rec.add_argument("--workdir", required=True)
    rec.add_argument("--model", action="append", required=True)
    rec.add_argument("--pooling", action="append", required=True)
    rec.add_argument("--reuse", action="store_true", help="Record on a workdir another build made.")
    dif = verbs.add_parser("diff")
    dif.add_argument("a")
    dif.add_argument("b")
    dif.add_argument("--workdir-text", action="append", default=[], help="Workdir paths to read as W.")
    args = parser.parse_args()
    if args.verb == "record":
        record(args)
        return 0
    return diff(args)


if __name__ == "__main__":
    sys.exit(main())
