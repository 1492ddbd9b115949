"""Fault injection on sweeps: kill -9, torn and foreign rows, two writers, orphaned workers.

Each test damages a sweep the way a crash, a full disk, a hand edit or a second writer would,
then checks the table afterwards against an undamaged reference: every run present once, with
the reference's results, and no process of the sweep left running.
"""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from overshadow_lab.lab.results import (
    BadRowsWarning,
    TableBusyError,
    read_results,
    rejected_path,
    scan_table,
)
from overshadow_lab.lab.sweep import run_sweep

VALUES, SEEDS = [2, 3, 4], 2  # six runs
FAST = dict(size="pico", n_sets=6, vocab=100, rule="epochs", epochs=6, batch_size=32)
CLI_FAST = ["--size", "pico", "--n-sets", "6", "--vocab", "100", "--rule", "epochs"]
CLI_FAST += ["--epochs", "6", "--batch-size", "32"]
METRICS = ["config_hash", "P", "seed", "RR", "HR", "R", "sub_acc", "steps", "tokens"]


def sweep(out, **kw):
    return run_sweep("P", VALUES, seeds=SEEDS, tier="cpu", out=out, progress=False, **FAST, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The undamaged sweep: its table file and its metrics sorted by run."""
    out = tmp_path_factory.mktemp("ref") / "ref.csv"
    sweep(out, workers=1)
    return out, _metrics(read_results(out))


def _metrics(table: pd.DataFrame) -> pd.DataFrame:
    return table[METRICS].sort_values("config_hash", ignore_index=True)


def _same_as_reference(out: Path, reference) -> pd.DataFrame:
    table = read_results(out)
    assert table["config_hash"].is_unique, "a run is in the table twice"
    pd.testing.assert_frame_equal(_metrics(table), reference[1])
    return table


# ------------------------------------------------------------------------------------------
# kill -9 at several points, then resume; no worker outlives the sweep
# ------------------------------------------------------------------------------------------


def _descendants(pid: int) -> set[int]:
    """Live processes below ``pid`` (read from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {c for c, p in parents.items() if p in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has ended; only its exit status waits to be collected


def _rows(out: Path) -> int:
    return len(scan_table(out.read_text()).rows) if out.is_file() else 0


def _sweep_cli(out: Path, workers: int) -> list[str]:
    args = ["sweep", "--factor", "P", "--values", ",".join(map(str, VALUES))]
    args += ["--seeds", str(SEEDS), "--tier", "cpu", "--out", str(out), "--no-progress"]
    return [sys.executable, "-m", "overshadow_lab.cli", *args, "--workers", str(workers), *CLI_FAST]


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads processes from /proc")
@pytest.mark.parametrize(
    "point, workers",
    # (the serial path, workers=1, is killed mid-sweep in tests/cli/test_cli_sweep.py)
    [("workers started, no row yet", 2), ("two rows", 2)],
)
def test_kill_9_then_resume_loses_and_repeats_nothing(point, workers, reference, tmp_path):
    out, log = tmp_path / "killed.csv", tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            _sweep_cli(out, workers), stdout=subprocess.DEVNULL, stderr=err, start_new_session=True
        )
    seen: set[int] = set()
    try:
        deadline = time.time() + 240
        while True:
            assert proc.poll() is None, f"the sweep ended before ({point}): {log.read_text()}"
            assert time.time() < deadline, f"the kill point ({point}) never came"
            now = _descendants(proc.pid)
            seen |= now
            rows = _rows(out)
            if point.startswith("workers") and len(now) > workers and not rows:
                break
            if point == "two rows" and rows >= 2:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # the sweep alone: its workers must go by themselves
        proc.wait(timeout=30)
        gone_by = time.time() + 20
        while any(_alive(p) for p in seen) and time.time() < gone_by:
            time.sleep(0.05)
        assert not [p for p in seen if _alive(p)], "processes of the sweep outlived it"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    if workers > 1:
        assert len(seen) > workers  # the workers (and the resource tracker) were seen
    before = scan_table(out.read_text()) if out.is_file() else None
    # a kill that lands inside the write of a row tears it: at most that one, the last line
    assert before is None or [k for k, _, _ in before.bad] in ([], [len(before.rows) + 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadRowsWarning)  # the torn row, if any, is moved aside
        sweep(out, workers=1)  # resume
    table = _same_as_reference(out, reference)
    if before is not None:  # the runs finished before the kill were kept, not redone
        kept = table.set_index("config_hash").loc[[r["config_hash"] for r in before.rows]]
        assert kept["finished"].tolist() == [r["finished"] for r in before.rows]


# ------------------------------------------------------------------------------------------
# torn and foreign rows
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["before the hash", "after the hash", "after, then a newline"])
def test_torn_last_row_is_moved_aside_and_redone_once(where, reference, tmp_path):
    out = tmp_path / "torn.csv"
    text = reference[0].read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    at = last.index(_hash_of(last))
    cut = at + 5 if where == "before the hash" else at + 16 + 8  # in the hash, or fields after
    out.write_text(
        text[: len(text) - len(last) - 1] + last[:cut] + ("\n" if "newline" in where else "")
    )
    with pytest.warns(BadRowsWarning, match=r"line 7: torn"):
        assert len(read_results(out)) == 5  # a reader leaves the torn row out
    with pytest.warns(BadRowsWarning, match=r"1 bad row.*line 7: torn.*moved to"):
        sweep(out, workers=1)
    table = _same_as_reference(out, reference)
    assert len(table) == 6
    side = pd.read_csv(rejected_path(out))
    assert side["row"].tolist() == [last[:cut]] and side["table_line"].tolist() == [7]
    with _no_warning():  # the table is clean now: nothing more is moved or redone
        again = sweep(out, workers=1)
    assert len(again) == 6 and len(pd.read_csv(rejected_path(out))) == 1


def _hash_of(line: str) -> str:
    return next(f for f in line.split(",") if len(f) == 16 and set(f) <= set("0123456789abcdef"))


@contextlib.contextmanager
def _no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", BadRowsWarning)
        yield


def test_foreign_edited_and_repeated_rows(reference, tmp_path):
    out = tmp_path / "mixed.csv"
    other = tmp_path / "other.csv"
    run_sweep("P", [2], seeds=1, tier="cpu", out=other, progress=False, workers=1, **FAST, lr=1e-3)
    header, *lines = reference[0].read_text().splitlines()
    other_line = other.read_text().splitlines()[1]
    cols = header.split(",")
    edited = lines[1].split(",")
    edited[cols.index("lr")] = "0.001"  # another lr under the original hash: not its own result
    out.write_text(
        "\n".join([header, lines[0], ",".join(edited), *lines[2:], other_line, lines[0]]) + "\n"
    )
    with pytest.warns(BadRowsWarning) as caught:
        table = sweep(out, workers=1)
    message = str(caught[0].message)
    assert "line 3: config_hash" in message and "not the hash of the row's own settings" in message
    assert "line 9: a second row of run" in message
    pd.testing.assert_frame_equal(_metrics(table), reference[1])  # this sweep's six runs
    everything = read_results(out)  # the valid row of another configuration stays in the file
    assert len(everything) == 7 and everything["config_hash"].is_unique
    assert (everything["lr"] == 1e-3).sum() == 1
    assert pd.read_csv(rejected_path(out))["table_line"].tolist() == [3, 9]


# ------------------------------------------------------------------------------------------
# two writers on one table
# ------------------------------------------------------------------------------------------

HOLD = textwrap.dedent(
    """
    import sys, time
    from overshadow_lab.lab.results import ResultsWriter
    with ResultsWriter(sys.argv[1]) as w:
        w.append({"config_hash": "a", "R": 1.0})
        print("holding", flush=True)
        time.sleep(120)
    """
)

APPEND = textwrap.dedent(
    """
    import sys
    from overshadow_lab.lab.results import append_row, config_hash
    me = sys.argv[2]
    for k in range(40):
        cfg = {"writer": me, "k": k}
        row = {"writer": me, "k": k, "note": "x" * 300, "config_hash": config_hash(cfg)}
        append_row(sys.argv[1], row)
    """
)


def test_a_second_sweep_on_a_table_in_use_is_refused_before_training(tmp_path):
    out = tmp_path / "busy.csv"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        t0 = time.perf_counter()
        with pytest.raises(TableBusyError, match=r"being written by another process"):
            sweep(out, workers=1)
        assert time.perf_counter() - t0 < 10  # refused at once, nothing trained
        assert out.read_text() == "config_hash,R\na,1.0\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["busy.csv"]
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_two_processes_appending_to_one_table_lose_and_mix_nothing(tmp_path):
    out = tmp_path / "shared.csv"
    procs = [subprocess.Popen([sys.executable, "-c", APPEND, str(out), w]) for w in ("a", "b")]
    for p in procs:
        assert p.wait(timeout=240) == 0
    scan = scan_table(out.read_text())
    assert not scan.bad and len(scan.rows) == 80
    for w in ("a", "b"):
        assert sorted(int(r["k"]) for r in scan.rows if r["writer"] == w) == list(range(40))
