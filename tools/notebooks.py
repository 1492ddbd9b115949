"""Chapter notebooks: Colab copies, nbval staging, and the shared execution cache.

    python tools/notebooks.py colab [--check]   write (or check) notebooks/<chapter>.ipynb
                                                and notebooks/student/<chapter>.ipynb
    python tools/notebooks.py stage DIR         write the chapters that need executing to DIR
    python tools/notebooks.py invalidate        empty the execution cache if the package changed

The book executes chapters in jupyter-cache mode (`_config.yml`). `make test` runs each chapter
once under nbval; `tools/nbval_cache.py` stores what nbval executed in that same cache, so the
strict book build that follows reuses the outputs instead of running the chapter again. The
cache key is the chapter's code cells; `invalidate` adds the package source to it by clearing
the cache whenever a file of `overshadow_lab/` (or `pyproject.toml`) changes.

`colab` writes two notebooks per chapter with `tools/colab_notebooks.py`: the chapter as Colab
renders it (plain Markdown, solutions folded) and the student set (solutions replaced by stubs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import nbformat
import yaml
from colab_notebooks import notebook, read_chapter

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "_build" / ".jupyter_cache"
HASH_FILE = ROOT / "_build" / ".package-hash"
COLAB_DIR = ROOT / "notebooks"
STUDENT = "student"


#: Chapters that share the lab's sweep tables (``results_dir("lab") / sweep_{P,L}_<tier>.csv``):
#: Data imbalance computes them, Generalization bound loads them, Law resumes them; each
#: computes what is missing. `make test` runs chapters on parallel nbval workers, so these go
#: to one worker as one group, in reading order: otherwise one could load a table another is
#: still writing (a smaller sweep, silently) or meet run_sweep's refusal of a table in use.
SHARED_RESULTS = ("02_data_imbalance", "03_generalization_bound", "05_law")

#: The order in which parallel workers take chapters (and groups): the longest first, so that
#: the last to start is short. Measured on 2 cores, two chapters at a time, 2026-12-01: Model
#: size 276-292 s, the shared-results group 209-220 s, Contrastive decoding 125-129 s,
#: Fine-tuning 73-81 s, Introduction 68-72 s. Only a scheduling hint: a chapter not named here
#: goes last.
LONGEST_FIRST = ("04_model_size", *SHARED_RESULTS, "06_contrastive_decoding", "04_finetuning")


def chapters() -> list[Path]:
    """MyST notebook chapters in table-of-contents order (pages without a kernel are skipped)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            for part in entry.get("parts", []) if isinstance(entry, dict) else []:
                walk(part.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    out = []
    for f in files:
        md = ROOT / f"{f}.md"
        if md.is_file() and "kernelspec:" in md.read_text().split("\n---", 1)[0]:
            out.append(md)
    return out


def colab_notebook(md: Path, student: bool = False) -> str:
    """The Colab notebook of a chapter (``student=True``: solutions replaced by stubs)."""
    return notebook(md, tuple(chapters()), student=student)


def wanted_notebooks() -> dict[str, str]:
    """Every notebook `colab` writes, by path under notebooks/."""
    wanted = {}
    for md in chapters():
        wanted[f"{md.stem}.ipynb"] = colab_notebook(md)
        wanted[f"{STUDENT}/{md.stem}.ipynb"] = colab_notebook(md, student=True)
    return wanted


def cmd_colab(check: bool) -> int:
    (COLAB_DIR / STUDENT).mkdir(parents=True, exist_ok=True)
    wanted = wanted_notebooks()
    stale = []
    for name, text in wanted.items():
        path = COLAB_DIR / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
            if not check:
                path.write_text(text, encoding="utf-8")
    present = [*COLAB_DIR.glob("*.ipynb"), *(COLAB_DIR / STUDENT).glob("*.ipynb")]
    extra = sorted(p.relative_to(COLAB_DIR).as_posix() for p in present)
    extra = [name for name in extra if name not in wanted]
    if check:
        if stale or extra:
            print("notebooks/ is out of sync with book/:", file=sys.stderr)
            for name in stale:
                print(f"  stale or missing: notebooks/{name}", file=sys.stderr)
            for name in extra:
                print(f"  no chapter for: notebooks/{name}", file=sys.stderr)
            print("run `make notebooks` and commit the result", file=sys.stderr)
            return 1
        print(f"notebooks/: {len(wanted)} Colab and student notebooks in sync with their chapters")
        return 0
    for name in extra:
        (COLAB_DIR / name).unlink()
    print(f"notebooks/: wrote {len(stale)}, removed {len(extra)}, {len(wanted)} in all")
    return 0


def package_hash() -> str:
    h = hashlib.sha256()
    files = sorted((ROOT / "overshadow_lab").rglob("*.py")) + [ROOT / "pyproject.toml"]
    files += sorted((ROOT / "overshadow_lab" / "recorded").glob("*"))
    for f in files:
        if f.is_file():
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def cmd_invalidate() -> int:
    current = package_hash()
    old = HASH_FILE.read_text().strip() if HASH_FILE.is_file() else None
    if old != current:
        if CACHE.exists():
            shutil.rmtree(CACHE)
            print("execution cache cleared: the package changed since the chapters last ran")
        HASH_FILE.parent.mkdir(parents=True, exist_ok=True)
        HASH_FILE.write_text(current + "\n")
    return 0


def cmd_stage(outdir: Path) -> int:
    """Write each chapter that has no cached execution to DIR as .ipynb, for nbval."""
    from jupyter_cache import get_cache

    cmd_invalidate()
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.mkdir(parents=True)
    cache = get_cache(str(CACHE))
    staged, cached = [], []
    for md in chapters():
        nb = read_chapter(md)
        try:
            cache.match_cache_notebook(nb)
            cached.append(md.stem)
            continue
        except KeyError:
            pass
        nb.metadata["overshadow_source"] = str(md.relative_to(ROOT))
        nbformat.write(nb, str(outdir / f"{md.stem}.ipynb"))
        staged.append(md.stem)
    print(f"chapters to execute: {', '.join(staged) or 'none'}")
    if cached:
        print(f"chapters unchanged since their last run (outputs reused): {', '.join(cached)}")
    (outdir / "staged.json").write_text(json.dumps(staged))
    order, groups = schedule(staged)
    (outdir / "order.txt").write_text(" ".join(order) + "\n")
    (outdir / "groups.json").write_text(json.dumps(groups, indent=1))
    return 0


def schedule(staged: list[str]) -> tuple[list[str], dict[str, str]]:
    """How nbval's parallel workers take the staged chapters: the notebook files in the order
    the command line names them, and each file's worker group (read by ``tools/nbval_groups.py``).
    Reading order is kept inside a group."""
    rank = {stem: i for i, stem in enumerate(LONGEST_FIRST)}
    order = sorted(staged, key=lambda stem: rank.get(stem, len(rank)))  # stable: toc order
    groups = {stem: "shared-results" if stem in SHARED_RESULTS else stem for stem in staged}
    return [f"{stem}.ipynb" for stem in order], {f"{s}.ipynb": g for s, g in groups.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("colab", help="write or check notebooks/<chapter>.ipynb")
    c.add_argument(
        "--check", action="store_true", help="fail if a notebook is stale instead of writing"
    )
    s = sub.add_parser("stage", help="write the chapters that need executing as .ipynb")
    s.add_argument("outdir", type=Path)
    sub.add_parser("invalidate", help="clear the execution cache if the package changed")
    args = parser.parse_args(argv)
    if args.cmd == "colab":
        return cmd_colab(args.check)
    if args.cmd == "stage":
        return cmd_stage(args.outdir)
    return cmd_invalidate()


if __name__ == "__main__":
    raise SystemExit(main())
