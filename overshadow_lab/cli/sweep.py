"""``overshadow-lab sweep``: run a resumable sweep over P, L, model size S (or a setting such as
``n_sets``, ``position`` or ``weight_decay``); merge its shards.

``--protocol exposure`` (or ``epochs``, ``plateau``, ``converge``) trains under a named protocol
of :mod:`overshadow_lab.lab.protocols`; explicit options such as ``--exposures`` win over it.

``overshadow-lab sweep --factor P ... --out results.csv --shard i/N`` writes shard i's own table,
``results.shard-i-of-N.csv``; ``overshadow-lab sweep merge --out results.csv`` checks the N shard
tables and adds every run once to ``results.csv`` (see :mod:`overshadow_lab.lab.sweep` for a
job-array recipe).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings

from overshadow_lab.lab.results import (
    BadRowsWarning,
    merge_results,
    read_results,
    shard_files,
    shard_path,
)

FACTOR_CHOICES = ("P", "L", "S", "n_sets", "position", "weight_decay", "lr", "exposures")
PROTOCOL_CHOICES = ("epochs", "exposure", "plateau", "converge")


def _values(text: str | None, factor: str):
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError("--values is empty: give a comma-separated list, e.g. --values 2,10,100")
    if factor in ("S", "position"):
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
        "configuration) are skipped, and bad rows (torn, edited) are moved to "
        "<name>.rejected.csv and redone. With --shard i/N the runs of shard i go to "
        "<name>.shard-i-of-N.csv; `overshadow-lab sweep merge --out <name>.csv` merges them.",
    )
    p.add_argument(
        "--factor",
        choices=FACTOR_CHOICES,
        help="the factor to vary (required to run a sweep); settings other than P, L, S need "
        "--values",
    )
    p.add_argument(
        "--protocol",
        choices=PROTOCOL_CHOICES,
        help="a named training protocol (overshadow_lab.lab.protocols); default: the tier's rule",
    )
    p.add_argument(
        "--values", help="comma-separated values (S: size names); default: the tier's grid"
    )
    p.add_argument("--seeds", type=int, default=3, help="repeats per value (default 3)")
    p.add_argument("--tier", choices=["cpu", "gpu"], help="compute tier (default: auto)")
    p.add_argument("--out", help="results CSV (appended to, resumed from; required)")
    p.add_argument("--shard", help="run only shard i of N (e.g. 0/4), into <out>.shard-i-of-N.csv")
    p.add_argument(
        "--workers", type=int, help="parallel CPU processes (default: one per usable CPU)"
    )
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
    g.add_argument("--rule", choices=list(PROTOCOL_CHOICES))
    g.add_argument("--epochs", type=int)
    g.add_argument("--exposures", type=int, help="presentations per subordinate statement")
    g.add_argument("--weight-decay", type=float, dest="weight_decay")
    g.add_argument("--max-steps", type=int, dest="max_steps")
    g.add_argument("--rr-threshold", type=float, dest="rr_threshold")
    g.add_argument("--lr", type=float)
    g.add_argument("--batch-size", type=int, dest="batch_size")
    p.set_defaults(func=run)
    actions = p.add_subparsers(dest="action", metavar="merge", title="other actions")
    m = actions.add_parser(
        "merge",
        help="merge the shard tables of a sweep into one table",
        description="Check the shard tables of a sweep and add every valid run once to --out "
        "(created if needed; runs already there are kept). With no FILE, the shard files "
        "<out>.shard-i-of-N.csv beside --out are taken, and all N must be there. Bad rows "
        "are left out with a warning; the shard files are not changed. Run it again when "
        "more shards have finished: it adds only what is new.",
    )
    m.add_argument("--out", required=True, help="the merged results CSV")
    m.add_argument("files", nargs="*", metavar="FILE", help="tables to merge (default: shards)")
    m.set_defaults(func=run_merge)


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
    "exposures",
    "weight_decay",
    "max_steps",
    "rr_threshold",
    "lr",
    "batch_size",
)


@contextlib.contextmanager
def _one_line_warnings():
    """Print bad-row warnings as one line each, like the command's errors."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        print(f"overshadow-lab sweep: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always", BadRowsWarning)
        warnings.showwarning = show
        yield


def run(args: argparse.Namespace) -> int:
    # Deferred on purpose, the one such import here: the sweep brings torch, which building
    # the parser (`overshadow-lab --help`, `sweep --help`) must not load.
    from overshadow_lab.lab.protocols import protocol_options
    from overshadow_lab.lab.sweep import parse_shard, run_sweep, summarize

    if args.factor is None:
        raise ValueError("--factor is required: P, L or S (or `overshadow-lab sweep merge`)")
    if args.out is None:
        raise ValueError("--out is required: the results CSV to write and resume from")
    fixed = {k: getattr(args, k) for k in FIXED if getattr(args, k, None) is not None}
    if args.protocol is not None:
        options = protocol_options(args.protocol)
        options.pop("plateau_tol", None)  # TrainConfig's default, not a sweep setting
        fixed = {**options, **fixed}
    for k in ("P", "L"):
        if k in fixed and float(fixed[k]).is_integer():
            fixed[k] = int(fixed[k])
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    shard = parse_shard(args.shard)
    out = shard_path(args.out, shard) if shard is not None else args.out
    t0 = time.perf_counter()
    with _one_line_warnings():
        table = run_sweep(
            args.factor,
            _values(args.values, args.factor),
            seeds=args.seeds,
            tier=args.tier,
            out=out,
            progress=not args.no_progress,
            shard=shard,
            workers=args.workers,
            device=args.device,
            **fixed,
        )
    by = args.factor
    summary = summarize(table, by=by)
    cols = [by, "R", "lo", "hi", "count"]
    extra = table.groupby(by)[["RR", "HR", "sub_acc", "steps"]].mean().reset_index()
    print(
        summary[cols].merge(extra, on=by).to_string(index=False, float_format=lambda x: f"{x:.3g}")
    )
    print(f"{len(table)} runs in {out} ({time.perf_counter() - t0:.0f} s)")
    if shard is not None:
        print(f"when all {shard[1]} shards are done: overshadow-lab sweep merge --out {args.out}")
    return 0


def run_merge(args: argparse.Namespace) -> int:
    files = args.files or shard_files(args.out)
    with _one_line_warnings():
        report = merge_results(files, args.out)
        total = len(read_results(args.out))
    print(
        f"merged {len(files)} file(s) into {args.out}: {report.added} runs added, "
        f"{report.repeated} already there, {report.bad} bad rows left out; {total} runs in all"
    )
    return 0
