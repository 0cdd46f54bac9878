"""Embedding throughput: our encoder against sentence-transformers' ``encode``, A B A B in fresh processes.

Each measurement is one subprocess (``python -m pipeline.tools.bench.embed worker ...``) that loads the model,
embeds every text once and reports wall time of the embedding call (model load excluded, everything
after it included: tokenisation, batching, compilation if any), tokens, peak RSS and the vectors. The
parent alternates the two implementations so drift on a shared machine hits both, and reports the
ratio per pair and its median, plus the model FLOP/s as a share of a matmul peak measured in the same
kind of process at the same precision.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.settings import EmbedBenchSettings
from pipeline.core.stage_report import ResultReport
from pipeline.core.timing import Timings
from pipeline.encoders.cpu_kernels import PackedLinear, onednn_available

IMPLEMENTATIONS = ("encajes", "sentence-transformers")


@dataclass
class Measurement:
    impl: str
    dtype: str
    batch_size: int
    texts: int
    tokens: int
    seconds: float
    peak_rss_mb: float
    vectors: str  # .npy path

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


# --- the worker (one fresh process per measurement) ----------------------------------------------------


def _read_texts(csv_path: str, limit: int | None) -> list[str]:
    import pandas as pd

    texts = pd.read_csv(csv_path, keep_default_na=False, dtype=str)["text"].tolist()
    return texts[:limit] if limit else texts


def worker(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    texts = _read_texts(args.csv, args.limit)
    timings = Timings()
    if args.impl == "encajes":
        from pipeline.core.settings import EmbedSettings
        from pipeline.encoders.loading import load_encoder, resolve_settings

        resolved = resolve_settings(
            EmbedSettings(
                model=args.model,
                max_length=args.max_length,
                dtype=args.dtype,
                device=args.device,
                prefix="",
                batch_size=args.batch_size,
            )
        )
        encoder = load_encoder(resolved)
        tokenizer = encoder.transformer.tokenizer
        with timings.part("embed"):  # as the embed stage runs it: its token budget, its packed layers
            vectors = encoder.encode(
                texts, batch_size=resolved.batch_size, token_budget=resolved.token_budget
            ).vectors
    else:
        from sentence_transformers import SentenceTransformer

        from pipeline.encoders.models import resolve_model

        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
        device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        model = SentenceTransformer(
            resolve_model(args.model).source, device=device, model_kwargs={"torch_dtype": dtype}
        )
        model.max_seq_length = args.max_length
        tokenizer = model.tokenizer
        with timings.part("embed"):
            vectors = model.encode(
                texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    lengths = tokenizer(texts, truncation=True, max_length=args.max_length)["input_ids"]
    np.save(args.out, np.asarray(vectors, dtype=np.float32))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return asdict(
        Measurement(
            args.impl,
            args.dtype,
            args.batch_size,
            len(texts),
            int(sum(len(ids) for ids in lengths)),
            timings["embed"],
            peak_kb / 1024,
            args.out,
        )
    )


def matmul_peak(dtype: str, device: str, size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a square matmul at this precision on this device: the denominator of MFU. On CPU the
    better of torch's matmul (MKL) and our prepacked oneDNN Linear, so MFU is against the best this CPU
    can do."""
    import torch

    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    dev = torch.device("cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    a = torch.randn(size, size, device=dev, dtype=torch_dtype)
    b = torch.randn(size, size, device=dev, dtype=torch_dtype)

    def flops_per_s(product) -> float:
        for _ in range(2):
            product()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        timings = Timings()
        with timings.part("matmul"):
            for _ in range(repeats):
                product()
            if dev.type == "cuda":
                torch.cuda.synchronize()
        return 2 * size**3 * repeats / timings["matmul"]

    peak = flops_per_s(lambda: a @ b)
    if dev.type == "cpu" and onednn_available():
        packed = PackedLinear(torch.nn.Linear(size, size, bias=False, dtype=torch_dtype), rows_hint=size)
        with torch.inference_mode():
            peak = max(peak, flops_per_s(lambda: packed(a)))
    return peak


def _device_name(device: str) -> str:
    """``auto`` as the workers resolve it, with the GPU's name where there is one."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return f"{device} ({torch.cuda.get_device_name()})" if device.startswith("cuda") else device


def model_flops_per_token(model: str, mean_tokens: float) -> float:
    """Forward FLOPs per token of a BERT-style encoder: 2 x (non-embedding weights) + attention scores."""
    from transformers import AutoConfig

    from pipeline.encoders.models import resolve_model

    config = AutoConfig.from_pretrained(resolve_model(model).source)
    h, ffn, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    linear = layers * (4 * h * h + 2 * h * ffn)
    attention = layers * 2 * h * mean_tokens  # QK^T and PV, per token, over the sequence
    return 2 * linear + 2 * attention


# --- the parent ----------------------------------------------------------------------------------------


def run_worker(impl: str, opts: dict[str, Any], batch_size: int, out_dir: Path, tag: str) -> Measurement:
    out = out_dir / f"{tag}.npy"
    cmd = [
        sys.executable,
        "-m",
        "pipeline.tools.bench.embed",
        "worker",
        "--impl",
        impl,
        "--out",
        str(out),
        "--batch-size",
        str(batch_size),
    ]
    if impl != "encajes" and opts.get("their_dtype"):
        opts = {**opts, "dtype": opts["their_dtype"]}
    for key in ("csv", "model", "dtype", "device", "max_length", "limit"):
        if opts.get(key) is not None:
            cmd += [f"--{key.replace('_', '-')}", str(opts[key])]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        cmd, capture_output=True, text=True, env=env, check=False, cwd=Path(__file__).resolve().parents[1]
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker failed ({impl}):\n{done.stderr[-3000:]}")
    return Measurement(**json.loads(done.stdout.strip().splitlines()[-1]))


def best_batch_size(
    impl: str, opts: dict[str, Any], candidates: list[int], out_dir: Path
) -> tuple[int, dict]:
    """Each implementation gets its own best batch size, found on a slice of the texts."""
    if len(candidates) == 1:
        return candidates[0], {}
    sweep = {}
    trial = {**opts, "limit": min(opts.get("limit") or 10**9, opts.get("sweep_limit", 1000))}
    for size in candidates:
        sweep[size] = run_worker(impl, trial, size, out_dir, f"sweep-{impl}-{size}").texts_per_s
    return max(sweep, key=sweep.get), sweep


def compare_throughput(
    opts: dict[str, Any], rounds: int = 3, batch_sizes: list[int] | None = None, progress=print
) -> dict[str, Any]:
    batch_sizes = batch_sizes or [32, 64, 128]
    with tempfile.TemporaryDirectory(prefix="encajes-bench-") as tmp:
        out_dir = Path(tmp)
        chosen, sweeps = {}, {}
        for impl in IMPLEMENTATIONS:
            chosen[impl], sweeps[impl] = best_batch_size(impl, opts, batch_sizes, out_dir)
            progress(f"{impl}: batch size {chosen[impl]} {sweeps[impl] or ''}")
        their_dtype = opts.get("their_dtype") or opts["dtype"]
        pairs, peaks = [], dict.fromkeys({opts["dtype"], their_dtype}, 0.0)
        for r in range(rounds):
            pair = {}
            for impl in IMPLEMENTATIONS:  # A B A B ...
                pair[impl] = run_worker(impl, opts, chosen[impl], out_dir, f"{impl}-{r}")
                progress(f"round {r + 1} {impl}: {pair[impl].texts_per_s:,.1f} texts/s")
            pairs.append(pair)
            for dtype in peaks:  # once a round, the best kept: a busy neighbour only ever lowers it
                peaks[dtype] = max(peaks[dtype], matmul_peak(dtype, opts.get("device") or "auto"))
        ours = np.load(pairs[-1]["encajes"].vectors)
        theirs = np.load(pairs[-1]["sentence-transformers"].vectors)
        cosine = (ours * theirs).sum(axis=1)
    ratios = [p["encajes"].texts_per_s / p["sentence-transformers"].texts_per_s for p in pairs]
    first = pairs[0]["encajes"]
    flops_token = model_flops_per_token(opts["model"], first.tokens / first.texts)
    dtypes = {"encajes": opts["dtype"], "sentence-transformers": their_dtype}

    return {
        "model": opts["model"],
        "dtype": opts["dtype"],
        "their_dtype": their_dtype,
        "device": _device_name(opts.get("device") or "auto"),
        "texts": first.texts,
        "tokens": first.tokens,
        "max_length": opts["max_length"],
        **{
            impl: side_summary(impl, pairs, chosen[impl], dtypes[impl], peaks, flops_token) for impl in dtypes
        },
        "ratio_per_pair": [round(r, 3) for r in ratios],
        "median_ratio": round(statistics.median(ratios), 3),
        "min_cosine": float(cosine.min()),
        "model_gflop_per_token": round(flops_token / 1e9, 4),
        "batch_size_sweeps": sweeps,
    }


def side_summary(
    impl: str,
    pairs: list[dict[str, Measurement]],
    batch_size: int,
    dtype: str,
    peaks: dict,
    flops_token: float,
) -> dict[str, Any]:
    """One implementation's figures over the rounds: medians, peak memory and MFU."""
    runs = [p[impl] for p in pairs]
    tps = statistics.median(m.tokens_per_s for m in runs)
    return {
        "dtype": dtype,
        "batch_size": batch_size,
        "texts_per_s": [round(m.texts_per_s, 1) for m in runs],
        "median_texts_per_s": round(statistics.median(m.texts_per_s for m in runs), 1),
        "median_tokens_per_s": round(tps, 1),
        "peak_rss_mb": round(max(m.peak_rss_mb for m in runs), 1),
        "mfu": round(tps * flops_token / peaks[dtype], 4),
        "matmul_peak_gflops": round(peaks[dtype] / 1e9, 1),
    }


class EmbedBench(ResultReport):
    """``encajes bench embed``'s result, printable."""

    def lines(self) -> list[str]:
        r = self.result
        out = [f"{r['model']} on {r['device']}: {r['texts']:,} texts, {r['tokens']:,} tokens"]
        for name in IMPLEMENTATIONS:
            side = r[name]
            out.append(
                f"  {name:<22} {side['dtype']:<5} batch {side['batch_size']:>4}  "
                f"{side['median_texts_per_s']:>8,.1f} texts/s  "
                f"{side['median_tokens_per_s']:>10,.0f} tokens/s  "
                f"peak RSS {side['peak_rss_mb']:,.0f} MB  "
                f"MFU {side['mfu']:.1%} of {side['matmul_peak_gflops']:,.0f} GFLOP/s matmul peak"
            )
        out.append(f"  ratio ours/theirs per pair {r['ratio_per_pair']}, median {r['median_ratio']:.2f}x")
        out.append(f"  min cosine between the two outputs {r['min_cosine']:.6f}")
        return out


def bench_embed(csv: str, settings: EmbedBenchSettings, log: Callable[[str], None] = print) -> EmbedBench:
    """``encajes bench embed``: A B A B in fresh processes, as ``compare_throughput`` runs it."""
    opts = {key: value for key, value in asdict(settings).items() if key not in ("rounds", "batch_sizes")}
    result = compare_throughput(
        {"csv": csv, **opts}, settings.rounds, list(settings.batch_sizes) or None, progress=log
    )
    return EmbedBench(result)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.tools.bench.embed")
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker")
    w.add_argument("--impl", choices=IMPLEMENTATIONS, required=True)
    w.add_argument("--out", required=True)
    w.add_argument("--csv", required=True)
    w.add_argument("--model", default="minilm")
    w.add_argument("--dtype", default="fp32")
    w.add_argument("--device", default="auto")
    w.add_argument("--max-length", type=int, default=128)
    w.add_argument("--batch-size", type=int, default=64)
    w.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    if args.command == "worker":
        print(json.dumps(worker(args)))


if __name__ == "__main__":
    main()
