"""Record every decoding method over the bundled benchmark slices, resumably, with provenance.

Run from the repository root, under the lock that keeps heavy jobs one at a time::

    flock /tmp/overshadow-heavy.lock python scripts/record_benchmarks.py --benchmark memotrap \\
        --minutes 20
    flock /tmp/overshadow-heavy.lock python scripts/record_benchmarks.py --benchmark nq_swap \\
        --rows 500 --minutes 20

Each call appends chunks of ``--chunk`` rows to ``overshadow_lab/recorded/bench_<benchmark>.csv``
(every method decodes the same rows in a chunk; the table is rewritten atomically after each
chunk) and skips rows already recorded, so a recording can be made in pieces: it stops after
``--minutes`` (at the end of a chunk) or when ``--rows`` rows (default: the whole slice) are done.
Rows are visited in a seeded random order, so a partial recording is a random sample of the slice.
The provenance file beside the table (``bench_<benchmark>.json``) keeps the package's provenance
of the latest piece and, for every chunk, its rows, seconds per method and code hash.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import pandas as pd
import torch

from overshadow_lab import benchmark_data as bm
from overshadow_lab.benchmark_data.recording import RECORD_SEED
from overshadow_lab.records import load_recorded, provenance, save_recorded


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--benchmark", required=True, choices=["memotrap", "nq_swap"])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--rows", type=int, help="rows to have recorded in all (default: every row)")
    ap.add_argument("--chunk", type=int, default=16, help="rows per chunk (default 16)")
    ap.add_argument("--minutes", type=float, default=20.0, help="stop after a chunk past this")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--methods", help="comma-separated (default: every method of the benchmark)")
    ap.add_argument(
        "--dtype",
        default="float32",
        choices=bm.RECORD_DTYPES,
        help="the model's floating-point type (bfloat16: ~3x faster on a CPU with AMX, output "
        "layer kept in float32; a recording keeps one type)",
    )
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    ap.add_argument("--folder", help="where to record (default: overshadow_lab/recorded)")
    args = ap.parse_args(argv)
    default = bm.GENERATION_METHODS + (bm.LOGLIK_METHODS if args.benchmark == "memotrap" else ())
    methods = tuple(args.methods.split(",")) if args.methods else default
    unknown = set(methods) - set(default)
    if unknown:
        raise SystemExit(
            f"unknown method(s) {', '.join(sorted(unknown))}: use {', '.join(default)}"
        )
    if args.chunk < 1:
        raise SystemExit(f"--chunk must be >= 1, got {args.chunk}")
    if args.threads:
        torch.set_num_threads(args.threads)

    name = bm.recorded_name(args.benchmark)
    df = bm.load_slice(args.benchmark)
    order = bm.recording_order(len(df))
    target = min(args.rows or len(df), len(df))
    found = load_recorded(name, args.folder)
    table, prov = found if found is not None else (pd.DataFrame(), {})
    if len(table) and set(table["method"]) != set(methods):
        raise SystemExit(
            f"{name} holds methods {sorted(set(table['method']))}, not {sorted(methods)}: "
            "record the same methods, or move the old recording away"
        )
    if len(table) and prov.get("dtype", "float32") != args.dtype:
        raise SystemExit(
            f"{name} was recorded in {prov.get('dtype', 'float32')}, not {args.dtype}: record in "
            "the same type, or move the old recording away"
        )
    done = set(table["row"]) if len(table) else set()
    todo = [int(r) for r in order[:target] if int(r) not in done]
    chunks = list(prov.get("chunks", []))
    model, tok = bm.recording_model(args.model, args.dtype)
    start = time.perf_counter()
    print(f"{name}: {len(done)} rows recorded, {len(todo)} to go", file=sys.stderr)
    while todo and time.perf_counter() - start < 60 * args.minutes:
        rows, todo = todo[: args.chunk], todo[args.chunk :]
        t0 = time.perf_counter()
        part = bm.record_chunk(model, tok, args.benchmark, df, rows, methods, args.batch_size)
        secs = part.groupby("method", sort=False)["seconds"].first().round(2).to_dict()
        table = pd.concat([table, part.drop(columns="seconds")], ignore_index=True)
        chunks.append(
            {
                "rows": rows,
                "seconds": secs,
                "wall_seconds": round(time.perf_counter() - t0, 2),
                "code_hash": part["code_hash"].iloc[0],
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )
        meta = provenance(wall_seconds=sum(c["wall_seconds"] for c in chunks)) | {
            "model": args.model,
            "benchmark": args.benchmark,
            "methods": list(methods),
            "dtype": args.dtype,
            "batch_size": args.batch_size,  # a bfloat16 row's answer can depend on its batch
            "order_seed": RECORD_SEED,
            "torch_threads": torch.get_num_threads(),
            "rows_recorded": int(table["row"].nunique()),
            "chunks": chunks,
        }
        save_recorded(table, meta, name, args.folder)
        print(
            f"{name}: +{len(rows)} rows in {chunks[-1]['wall_seconds']:.0f} s "
            f"({json.dumps(secs)}), {table['row'].nunique()} recorded",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
