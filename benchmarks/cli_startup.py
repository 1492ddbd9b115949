"""Start-up time of the package and the command line, beside a bare Python.

Run from the repository root::

    .venv/bin/python benchmarks/cli_startup.py            # 5 runs of each command
    .venv/bin/python benchmarks/cli_startup.py --runs 9

Each command runs ``--runs`` times in a fresh process, the commands taking turns so that a
burst of load on the machine hits them alike: ``python -c pass`` (the floor: the interpreter
alone), ``python -c "import overshadow_lab"``, ``overshadow-lab --help`` and ``overshadow-lab law
fit`` on a generated 30-row results table. It prints the median wall time and the range of each,
the median CPU time of the process (what the command costs, whatever else runs on the machine)
and which heavy libraries each one imported (from one more run with ``-X importtime``). The
target of issue 12 is under 1 s for ``--help`` and ``law fit``. The console script is the one
beside this interpreter; without one, ``python -m overshadow_lab.cli`` stands in (and says so).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "transformers", "matplotlib", "scipy.stats", "pandas", "numpy")


def write_table(path: Path, rows: int = 30, seed: int = 0) -> None:
    """A lab-like results table: R grows with log10(P), 5 seeds per value of P, some noise."""
    rng = random.Random(seed)
    values = [2, 4, 8, 16, 32, 64]
    lines = ["factor,P,seed,R"]
    for i in range(rows):
        p = values[i % len(values)]
        lines.append(f"P,{p},{i // len(values)},{10 * math.log10(p) + 5 + rng.gauss(0, 1):.3f}")
    path.write_text("\n".join(lines) + "\n")


def commands(table: Path) -> tuple[list[tuple[str, list[str]]], str]:
    """(label, argv) of each command, and a note on how the console script was found."""
    python = sys.executable
    script = Path(python).with_name("overshadow-lab")
    if script.is_file():
        cli, note = [str(script)], f"console script {script}"
    else:
        cli, note = [python, "-m", "overshadow_lab.cli"], "no console script here: python -m"
    return [
        ("python -c pass", [python, "-c", "pass"]),
        ('python -c "import overshadow_lab"', [python, "-c", "import overshadow_lab"]),
        ("overshadow-lab --help", [*cli, "--help"]),
        (
            "overshadow-lab law fit (30 rows)",
            [*cli, "law", "fit", str(table), "--x", "P", "--y", "R", "--json"],
        ),
    ], note


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run; the CPU time (user + system) of the child process is
    what the command itself costs, the wall time adds whatever else the machine is doing."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def heavy_imports(argv: list[str]) -> list[str]:
    """The heavy libraries a run imports, read from CPython's import-time report."""
    env = dict(os.environ, PYTHONPROFILEIMPORTTIME="1")
    err = subprocess.run(argv, check=True, capture_output=True, text=True, env=env).stderr
    names = {line.rsplit("|", 1)[-1].strip() for line in err.splitlines() if "|" in line}
    return [m for m in HEAVY if any(n == m or n.startswith(m + ".") for n in names)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="fresh processes per command (default 5)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error(f"--runs must be at least 1, got {args.runs}")
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "results.csv"
        write_table(table)
        todo, note = commands(table)
        for _, cmd in todo:  # once untimed: the first run pays for reading files from disk
            timed(cmd)
        times: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in todo}
        for _ in range(args.runs):
            for label, cmd in todo:
                times[label].append(timed(cmd))
        heavy = {label: heavy_imports(cmd) for label, cmd in todo}
    result = {}
    for label, runs in times.items():
        wall, cpu = [w for w, _ in runs], [c for _, c in runs]
        result[label] = {
            "median_s": statistics.median(wall),
            "min_s": min(wall),
            "max_s": max(wall),
            "cpu_median_s": statistics.median(cpu),
            "heavy_imports": heavy[label],
        }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}, "
        f"load average {os.getloadavg()[0]:.1f}; {args.runs} fresh processes per command, "
        f"taking turns; {note}"
    )
    print(f"{'command':<34} {'wall median':>11} {'wall range':>13} {'CPU':>7}   heavy imports")
    for label, r in result.items():
        span = f"{r['min_s']:.2f}-{r['max_s']:.2f} s"
        heavy_names = ", ".join(r["heavy_imports"]) or "-"
        print(
            f"{label:<34} {r['median_s']:>9.2f} s {span:>13} {r['cpu_median_s']:>5.2f} s   "
            f"{heavy_names}"
        )
    floor = result["python -c pass"]["median_s"]
    print(
        f"target (issue 12): --help and law fit under 1 s; the bare interpreter takes {floor:.2f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
