"""``overshadow-lab grade``: run every exercise check on a folder of submissions."""

from __future__ import annotations

import argparse
import math
import sys


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text!r}")
    return int(text)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "grade",
        help="grade a folder of student notebooks or modules",
        description="Run the exercise checks on every .py/.ipynb submission in a folder and write "
        "one row per submission (score, per-exercise 0/1, feedback, error) to a CSV file, row by "
        "row as each is graded. Each submission runs sandboxed in its own processes, with time "
        "and memory limits, and only the values its functions return reach the grader: a broken "
        "or hostile one scores what its answers earn and the rest go on.",
    )
    p.add_argument(
        "submissions", metavar="SUBMISSIONS_DIR", nargs="?", help="folder of submissions"
    )
    p.add_argument("--out", help="CSV file to write (e.g. scores.csv); required when grading")
    p.add_argument("--chapter", help="grade the exercises of this chapter (e.g. introduction)")
    p.add_argument("--exercises", help="comma-separated exercise names to grade")
    p.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=300.0,
        help="seconds each submission's code may run (default 300)",
    )
    p.add_argument(
        "--memory-mb",
        type=_positive_int,
        default=2048,
        help="memory each submission may allocate, in MiB (default 2048)",
    )
    p.add_argument(
        "--isolation",
        choices=("auto", "fork", "subprocess"),
        default="auto",
        help="a forked copy of the grader (fast) or a fresh interpreter per submission "
        "(inside bubblewrap when available); default auto: subprocess with "
        "bubblewrap when it works here, else fork",
    )
    p.add_argument(
        "--sandbox",
        choices=("auto", "bwrap", "none"),
        default="auto",
        help="bwrap: require bubblewrap; none: rlimits, seccomp and a private folder "
        "only; default auto",
    )
    p.add_argument("--list", action="store_true", help="list the known exercises and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from overshadow_lab.exercises import list_exercises
    from overshadow_lab.grading import grade

    if args.list:
        print(list_exercises().to_string(index=False))
        return 0
    if not args.submissions or not args.out:
        raise ValueError(
            "give a submissions folder and --out FILE.csv (or --list to see the exercises)"
        )
    names = [n.strip() for n in args.exercises.split(",") if n.strip()] if args.exercises else None
    df = grade(
        args.submissions,
        exercises=names,
        chapter=args.chapter,
        timeout=args.timeout,
        isolation=args.isolation,
        out=args.out,
        sandbox=args.sandbox,
        memory_mb=args.memory_mb,
    )
    for name, reason in df.attrs.get("skipped", []):
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print(df[["submission", "score", "max_score"]].to_string(index=False))
    print(f"wrote {len(df)} rows to {args.out}")
    return 0
