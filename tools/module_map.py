"""Check the module map against the package, or rewrite README's and CONTRIBUTING's module lists.

    python tools/module_map.py           # print the map as plain text
    python tools/module_map.py --check   # exit 1, naming what disagrees
    python tools/module_map.py --write   # rewrite the marked blocks from the map

The map itself is ``PARTS`` in ``overshadow_lab/_modules.py``; ``tests/test_module_map.py``
runs the same checks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from overshadow_lab import _modules
from overshadow_lab.records import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]


def write_documents(root: Path) -> list[str]:
    """Rewrite the marked block of README.md and CONTRIBUTING.md under ``root`` from the map
    (both are checked before either is written); return the documents that changed."""
    texts = {doc: (root / doc).read_text(encoding="utf-8") for doc in _modules.DOCUMENTS}
    spans = {doc: _modules.block(text, doc).span() for doc, text in texts.items()}
    changed = []
    for doc, text in texts.items():
        start, end = spans[doc]
        new = text[:start] + _modules.rendered(doc) + text[end:]
        if new != text:
            write_text_atomic(new, root / doc)
            changed.append(doc)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tools/module_map.py", description=__doc__.split("\n")[0]
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="exit 1 if anything disagrees")
    action.add_argument(
        "--write", action="store_true", help="rewrite README, CONTRIBUTING and the API page"
    )
    args = parser.parse_args(argv)
    problems = _modules.map_problems(ROOT / "overshadow_lab")
    if args.check:
        problems += _modules.document_problems(ROOT)
        print(
            "\n".join(problems)
            or "module map: package, README, CONTRIBUTING and the API page agree"
        )
        return 1 if problems else 0
    if args.write:
        if problems:  # never render a map that does not match the files
            print("\n".join(problems), file=sys.stderr)
            return 1
        changed = write_documents(ROOT)
        print(f"rewrote {', '.join(changed)}" if changed else "README and CONTRIBUTING up to date")
        return 0
    print(_modules.package_doc())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
