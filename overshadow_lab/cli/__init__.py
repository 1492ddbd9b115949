"""The ``overshadow-lab`` command line.

Each sub-command lives in its own module of this package and contributes a parser through
``add_parser(subparsers)``; the module list below is the whole command set.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from overshadow_lab import __version__

SUBCOMMANDS = ("grade", "sweep", "law", "decode")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="overshadow-lab",
        description="Knowledge overshadowing experiments: run sweeps, fit the law, "
        "evaluate contrastive decoding, grade exercises.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"{__name__}.{name}")
        if hasattr(module, "add_parser"):
            module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
