"""``overshadow-lab grade``: run every exercise check on a folder of submissions."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "grade",
        help="grade a folder of student notebooks or modules",
        description="Run the exercise checks on every .py/.ipynb submission in a folder and write "
        "one row per submission (score, per-exercise 0/1, feedback, error) to a CSV file. "
        "Each submission runs in its own process: a broken one scores 0 and the rest go on.",
    )
    p.add_argument("submissions", metavar="SUBMISSIONS_DIR", nargs="?", help="folder of submissions")
    p.add_argument("--out", help="CSV file to write (e.g. scores.csv); required when grading")
    p.add_argument("--chapter", help="grade the exercises of this chapter (e.g. introduction)")
    p.add_argument("--exercises", help="comma-separated exercise names to grade")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per submission (default 300)")
    p.add_argument("--isolation", choices=("auto", "fork", "subprocess"), default="auto",
                   help="how each submission is isolated: a forked grader (fast) or a fresh "
                   "interpreter per submission (slower, fully independent); default auto")
    p.add_argument("--list", action="store_true", help="list the known exercises and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from overshadow_lab.exercises import list_exercises
    from overshadow_lab.grading import grade, write_csv_atomic

    if args.list:
        print(list_exercises().to_string(index=False))
        return 0
    if not args.submissions or not args.out:
        raise ValueError("give a submissions folder and --out FILE.csv (or --list to see the exercises)")
    names = [n.strip() for n in args.exercises.split(",") if n.strip()] if args.exercises else None
    df = grade(args.submissions, exercises=names, chapter=args.chapter, timeout=args.timeout,
               isolation=args.isolation)
    write_csv_atomic(df, args.out)
    print(df[["submission", "score", "max_score"]].to_string(index=False))
    print(f"wrote {len(df)} rows to {args.out}")
    return 0
