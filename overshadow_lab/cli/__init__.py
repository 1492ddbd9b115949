"""The ``overshadow-lab`` command line.

Each subcommand lives in its own module of this package and contributes its parser through
``add_parser(subparsers)``; :data:`SUBCOMMANDS` is the whole command set. A module is imported
only when its subcommand runs (or its help is asked for), so that ``overshadow-lab --help`` and
``overshadow-lab law fit`` never pay for torch, transformers or the other subcommands' imports;
the top-level help lists every subcommand from the one-line summaries below, which
``tests/cli/test_cli.py`` checks against each module's own ``help=``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterable

from overshadow_lab import __version__

#: subcommand -> one-line summary (the ``help=`` its module gives to ``add_parser``)
SUBCOMMANDS: dict[str, str] = {
    "grade": "grade a folder of student notebooks or modules",
    "sweep": "train and evaluate models over a grid of P, L or model size S",
    "law": "fit the log-linear law R = a*log10(x) + b, or predict R from it",
    "decode": "evaluate contrastive decoding (CoDA, CAD, ...) on benchmarks",
}


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser, with the full parsers of ``commands`` (default: all).

    The other subcommands are listed by name and summary only, without importing their
    modules; :func:`main` builds the full parser of the one subcommand it runs.
    """
    wanted = set(SUBCOMMANDS if commands is None else commands)
    unknown = wanted - set(SUBCOMMANDS)
    if unknown:
        raise ValueError(f"unknown subcommand(s) {sorted(unknown)}: use {', '.join(SUBCOMMANDS)}")
    parser = argparse.ArgumentParser(
        prog="overshadow-lab",
        description="Knowledge overshadowing experiments: run sweeps, fit the law, "
        "evaluate contrastive decoding, grade exercises.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in SUBCOMMANDS.items():
        if name in wanted:
            importlib.import_module(f"{__name__}.{name}").add_parser(sub)
        else:
            sub.add_parser(name, help=summary)
    return parser


def _command(argv: list[str]) -> str | None:
    """The subcommand named in ``argv``: its first word that is not an option (the top level
    has no option that takes a value), or None."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: ``sys.argv[1:]``) and return the exit status:
    0 on success, 2 for no command or an input error (one line on stderr)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command(argv)
    parser = build_parser([command] if command in SUBCOMMANDS else [])
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # output piped into `head` and closed early: not an error
        sys.stderr.close()
        return 0
    except (ValueError, FileNotFoundError, NotADirectoryError, KeyError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"overshadow-lab {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
