"""``overshadow-lab sweep``: run a resumable sweep over P, L or model size S."""

from __future__ import annotations

import argparse


def _values(text: str | None, factor: str):
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError("--values is empty: give a comma-separated list, e.g. --values 2,10,100")
    if factor == "S":
        return items
    out = []
    for t in items:
        try:
            v = float(t)
        except ValueError:
            raise ValueError(
                f"--values for {factor} must be numbers, got {t!r} (e.g. 2,10,100)"
            ) from None
        out.append(int(v) if v.is_integer() else v)
    return out


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="train and evaluate models over a grid of P, L or model size S",
        description="Train one model per (value, seed) on synthetic knowledge sets and append "
        "one row per finished run (RR, HR, R, sub_acc, steps, seconds, provenance) to a CSV. "
        "Re-running the same command resumes: finished runs (keyed by a hash of their "
        "configuration) are skipped.",
    )
    p.add_argument("--factor", required=True, choices=["P", "L", "S"], help="the factor to vary")
    p.add_argument(
        "--values", help="comma-separated values (S: size names); default: the tier's grid"
    )
    p.add_argument("--seeds", type=int, default=3, help="repeats per value (default 3)")
    p.add_argument("--tier", choices=["cpu", "gpu"], help="compute tier (default: auto)")
    p.add_argument("--out", required=True, help="results CSV (appended to, resumed from)")
    p.add_argument("--shard", help="run only shard i of N (e.g. 0/4) of the runs")
    p.add_argument("--workers", type=int, help="parallel CPU processes (default: one per core)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("fixed settings (default: the tier's, see tier_defaults)")
    g.add_argument("--P", type=float, dest="P", help="relative popularity when not swept")
    g.add_argument("--L", type=float, dest="L", help="relative length when not swept")
    g.add_argument("--size", help="model size name, hub id or folder when S is not swept")
    g.add_argument("--init", choices=["scratch", "pretrained"])
    g.add_argument("--n-sets", type=int, dest="n_sets")
    g.add_argument("--vocab", type=int, help="built-in vocabulary size")
    g.add_argument("--position", choices=["end", "middle", "start", "random"])
    g.add_argument("--span-len", type=int, dest="span_len")
    g.add_argument("--rule", choices=["converge", "epochs"])
    g.add_argument("--epochs", type=int)
    g.add_argument("--max-steps", type=int, dest="max_steps")
    g.add_argument("--rr-threshold", type=float, dest="rr_threshold")
    g.add_argument("--lr", type=float)
    g.add_argument("--batch-size", type=int, dest="batch_size")
    p.set_defaults(func=run)


FIXED = (
    "P",
    "L",
    "size",
    "init",
    "n_sets",
    "vocab",
    "position",
    "span_len",
    "rule",
    "epochs",
    "max_steps",
    "rr_threshold",
    "lr",
    "batch_size",
)


def run(args: argparse.Namespace) -> int:
    import time

    from overshadow_lab.lab.sweep import run_sweep, summarize

    fixed = {k: getattr(args, k) for k in FIXED if getattr(args, k, None) is not None}
    for k in ("P", "L"):
        if k in fixed and float(fixed[k]).is_integer():
            fixed[k] = int(fixed[k])
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    t0 = time.perf_counter()
    table = run_sweep(
        args.factor,
        _values(args.values, args.factor),
        seeds=args.seeds,
        tier=args.tier,
        out=args.out,
        progress=not args.no_progress,
        shard=args.shard,
        workers=args.workers,
        device=args.device,
        **fixed,
    )
    by = "S" if args.factor == "S" else args.factor
    summary = summarize(table, by=by)
    cols = [by, "R", "lo", "hi", "count"]
    extra = table.groupby(by)[["RR", "HR", "sub_acc", "steps"]].mean().reset_index()
    print(
        summary[cols].merge(extra, on=by).to_string(index=False, float_format=lambda x: f"{x:.3g}")
    )
    print(f"{len(table)} runs in {args.out} ({time.perf_counter() - t0:.0f} s)")
    return 0
