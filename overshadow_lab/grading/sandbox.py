"""Run one submission in a sandboxed child and collect what it sends (the grader's side).

Process tree of one submission::

    grader ── supervisor (ours; a child subreaper) ── child (new session; the student's code)
                                                           └── anything it starts, setsid or not

* The **child** gets a fresh temporary folder holding only a copy of its own submission as its
  working directory and ``HOME``, a scrubbed environment, stdin from ``/dev/null``, stdout and
  stderr in a capped log, the result pipe as descriptor 3 and no other descriptor; it confines
  itself (:func:`overshadow_lab.grading.runner.confine`: rlimits, no capabilities, seccomp) before
  the student's code runs. With ``isolation="subprocess"`` it is a fresh interpreter, inside
  bubblewrap when :func:`bubblewrap` finds a working one: no network, its own process and user
  namespaces, a read-only view of the machine with ``/tmp``, the submissions folder and the
  results file hidden, and only its own folder writable.
* The **supervisor** is a Linux child subreaper: every process the submission starts that loses
  its parent is re-parented to it, however it detached (``setsid``, double fork). When the child
  exits, or the grader asks, or the grader dies, the supervisor kills every descendant, waits
  for them, and exits. So nothing a submission starts outlives its turn.
* The **grader** reads the result pipe until it closes, with a deadline that starts when the
  child says it is ready (so the interpreter's start-up is not counted against the student), at
  most :data:`MAX_REPLY` bytes, and parses it as plain data only. While it grades, its own
  memory is closed to its user (:func:`undumpable`).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pickle
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from overshadow_lab.grading import runner
from overshadow_lab.grading.runner import Limits

MAX_REPLY = 32 * 2**20  # bytes of answers a submission may send; one that sends more is stopped
SETUP_SECONDS = 120.0  # the child's own start-up (an interpreter, NumPy) must fit in this
_RUNNER = Path(runner.__file__).resolve()
_PACKAGE_ROOT = _RUNNER.parents[2]


@dataclass
class Report:
    """What one submission sent, as plain data, and how its turn ended."""

    defined: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    outcomes: dict[str, list] = field(default_factory=dict)
    stopped: str = ""  # empty when the child finished; else why it did not
    confined: list[str] = field(default_factory=list)  # the limits the child says it applied


@cache
def bubblewrap() -> str | None:
    """The path of a working ``bwrap`` (it must be able to create namespaces here), or None."""
    path = shutil.which("bwrap")
    if path is None:
        return None
    try:
        ok = (
            subprocess.run(
                [path, *_BWRAP_CORE, "--ro-bind", "/", "/", "true"], capture_output=True, timeout=30
            ).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        ok = False
    return path if ok else None


_BWRAP_CORE = (
    "--unshare-all",
    "--unshare-user",
    "--uid",
    "65534",
    "--gid",
    "65534",
    "--cap-drop",
    "ALL",
    "--die-with-parent",
    "--new-session",
)


def _bwrap_argv(bwrap: str, work: Path, hidden: list[Path]) -> list[str]:
    """bubblewrap options: everything read-only; ``/tmp``, the temporary folder and the
    folders in ``hidden`` emptied, its files masked; the interpreter and the package shown again
    if they lived there; only ``work`` writable."""
    argv = [bwrap, *_BWRAP_CORE, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    masks: list[Path] = []
    for path in [Path("/tmp"), Path(tempfile.gettempdir()), *hidden]:
        path = path.resolve()
        if path.is_dir() and path != Path("/") and path not in masks:
            argv += ["--tmpfs", str(path)]
            masks.append(path)
        elif path.is_file():
            argv += ["--ro-bind", "/dev/null", str(path)]
    needed = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent, _PACKAGE_ROOT}
    for path in sorted(p.resolve() for p in needed):
        if any(path.is_relative_to(m) for m in masks):
            argv += ["--ro-bind", str(path), str(path)]
    return argv + ["--bind", str(work), str(work), "--chdir", str(work), "--"]


def _environment(work: Path) -> dict[str, str]:
    """The whole environment of a child: nothing inherited, so no token or path leaks in."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(work),
        "TMPDIR": str(work),
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


@contextlib.contextmanager
def undumpable():
    """While grading, make the grader's memory unreadable and unwritable through ``/proc`` and
    ``ptrace`` by its own user (PR_SET_DUMPABLE 0): a submission running as that user, without
    capabilities, cannot then rewrite the grader's scores in place."""
    if sys.platform != "linux":
        yield
        return
    prctl = ctypes.CDLL(None).prctl
    before = prctl(3, 0, 0, 0, 0)  # PR_GET_DUMPABLE
    prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
    try:
        yield
    finally:
        prctl(4, max(before, 0), 0, 0, 0)


# -- processes -----------------------------------------------------------------------------------
def _parents() -> dict[int, int]:
    """pid -> parent pid of every process, from /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # the process name may hold spaces and ')': read the fields after the last ')'
        table[int(stat.parent.name)] = int(text[text.rfind(")") + 2 :].split()[1])
    return table


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, children first."""
    table, found, frontier = _parents(), [], [pid]
    while frontier:
        kids = [p for p, ppid in table.items() if ppid in frontier]
        found += kids
        frontier = kids
    return found


def _kill_all_below(me: int) -> None:
    """Kill every descendant and reap them; as a subreaper, orphans come back to be reaped."""
    while True:
        for pid in descendants(me) if Path("/proc").is_dir() else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _supervise(start_child, control: int) -> int:
    """The supervisor's body: start the child, wait for it or for a word from the grader (or
    the grader's death: end of file on ``control``), then kill everything below; its exit code."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    child = os.fork()
    if child == 0:
        start_child()  # never returns
    code = 0
    while True:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            code = 128 - code if code < 0 else code  # killed by signal n: 128 + n
            break
        if pid == 0 and select.select([control], [], [], 0.05)[0]:
            break
    if sys.platform != "linux":
        try:
            os.killpg(child, signal.SIGKILL)
        except OSError:
            pass
    _kill_all_below(os.getpid())
    return code


def _arrange_descriptors(log: int, result: int) -> None:
    """0 = /dev/null, 1 and 2 = the log, 3 = the result pipe; every other descriptor closed
    (a forked child would otherwise hold the grader's files, the results table among them)."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    if result != runner.RESULT_FD:
        os.dup2(result, runner.RESULT_FD)
    os.set_inheritable(runner.RESULT_FD, True)
    os.closerange(runner.RESULT_FD + 1, 65536)


def _start_forked(work: Path, entry: str, inputs: dict, limits: Limits, log: int, result: int):
    def start() -> None:
        try:
            os.setsid()
            os.chdir(work)
            if sys.platform == "linux":  # its own /proc entries readable again (see undumpable)
                ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)
            _arrange_descriptors(log, result)
            sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
            sys.stdout = open(1, "w", encoding="utf-8", closefd=False, buffering=1)  # noqa: SIM115
            sys.stderr = open(2, "w", encoding="utf-8", closefd=False, buffering=1)  # noqa: SIM115
            os.environ.clear()
            os.environ.update(_environment(work))
            if "matplotlib" in sys.modules:
                sys.modules["matplotlib"].use("Agg")
            # already imported by the grader (forked): importing it at the top of this module
            # would import every chapter's exercises wherever the sandbox is imported
            from overshadow_lab.exercises import framework

            runner.serve(Path(entry), inputs, limits, framework)
        finally:
            os._exit(70)

    return start


def _start_subprocess(argv: list[str], work: Path, log: int, result: int):
    def start() -> None:
        try:
            os.setsid()
            os.chdir(work)
            _arrange_descriptors(log, result)
            os.execve(argv[0], argv, _environment(work))
        finally:
            os._exit(71)

    return start


# -- one submission --------------------------------------------------------------------------------
@dataclass
class _Reading:
    """State of the reading of one child's messages."""

    names: set[str]
    report: Report
    ready_at: float | None = None
    done: bool = False
    received: int = 0

    def take(self, lines: list[bytes]) -> None:
        for line in lines:
            try:
                msg = json.loads(line)
            except (ValueError, RecursionError):
                continue  # not a message: whatever the submission wrote there is ignored
            if isinstance(msg, dict):
                self._take(msg)

    def _take(self, msg: dict) -> None:
        report = self.report
        if "ready" in msg and self.ready_at is None:
            self.ready_at = time.monotonic()
            confined = msg.get("confined")
            report.confined = [str(c) for c in confined] if isinstance(confined, list) else []
        elif isinstance(msg.get("defined"), list) and not report.defined:
            report.defined = [n for n in msg["defined"] if isinstance(n, str) and n in self.names]
            errors = msg.get("errors")
            report.errors += [str(e)[:500] for e in errors[:50]] if isinstance(errors, list) else []
        elif msg.get("exercise") in self.names and "outcome" in msg:
            report.outcomes.setdefault(msg["exercise"], []).append(msg["outcome"])
        elif msg.get("done") is True:
            self.done = True


def _collect(fd: int, reading: _Reading, timeout: float) -> str | None:
    """Read the child's messages until the pipe closes (None) or a limit is hit (why)."""
    begun, pending = time.monotonic(), bytearray()
    while True:
        if reading.ready_at is None:
            left = begun + max(SETUP_SECONDS, timeout) - time.monotonic()
        else:
            left = reading.ready_at + timeout - time.monotonic()
        if left <= 0:
            started = reading.ready_at is not None
            return f"timed out after {timeout:g} s" if started else "the sandbox did not start"
        if not select.select([fd], [], [], left)[0]:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return None
        reading.received += len(chunk)
        if reading.received > MAX_REPLY:
            return f"sent more than {MAX_REPLY // 2**20} MiB of answers"
        pending += chunk
        if b"\n" in chunk:  # split only when a line ends: a long line costs linear time
            *lines, last = bytes(pending).split(b"\n")
            pending = bytearray(last)
            reading.take(lines)


def _why(code: int, limits: Limits, log_tail: str) -> str:
    sig = code - 128 if code > 128 else 0
    if sig not in signal.valid_signals():
        sig = 0  # an exit code above 128 that is no signal
    if sig == signal.SIGXCPU:
        why = f"used more than {limits.cpu_seconds} s of CPU time"
    elif sig == signal.SIGXFSZ:
        why = f"wrote more than {limits.file_bytes // 2**20} MiB to a file or its output"
    elif sig:
        why = f"was killed by {signal.Signals(sig).name}"
    else:
        why = f"exit code {code}"
    tail = f": {log_tail}" if log_tail else ""
    return f"the submission stopped the grader ({why}) before it had finished{tail}"


def _log_tail(log: int) -> str:
    """The last line the submission printed (read through the grader's own descriptor)."""
    size = os.fstat(log).st_size
    text = os.pread(log, 4096, max(0, size - 4096)).decode("utf-8", "replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _reap(pid: int) -> int:
    """Wait for the supervisor (it kills its tree first); its exit code."""
    for _ in range(200):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    for below in descendants(pid) if Path("/proc").is_dir() else []:  # a supervisor that
        try:  # does not finish: kill its tree, then it
            os.kill(below, signal.SIGKILL)
        except OSError:
            pass
    os.kill(pid, signal.SIGKILL)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def run_submission(
    files: dict[str, bytes],
    entry: str,
    inputs: dict[str, list],
    limits: Limits,
    timeout: float,
    isolation: str,
    bwrap: str | None = None,
    hidden: list[Path] | None = None,
) -> Report:
    """Run one submission: ``files`` (relative path -> bytes) copied into a fresh folder,
    ``entry`` the name of the submission in it, ``inputs`` the cases of each exercise to answer.

    ``isolation`` is ``"fork"`` or ``"subprocess"``; ``bwrap`` the bubblewrap binary to use in
    the latter (None: the fallback), ``hidden`` the paths it hides. Never raises for anything
    the submission does; the report says what happened.
    """
    root = Path(tempfile.mkdtemp(prefix="overshadow-grade-"))
    work = root / "work"
    work.mkdir()
    for rel, data in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_bytes(data)
    log = os.open(root / "output.log", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    result_r, result_w = os.pipe()
    control_r, control_w = os.pipe()
    if isolation == "fork":
        start = _start_forked(work, entry, inputs, limits, log, result_w)
    else:
        lazy = {name: pickle.dumps(cases) for name, cases in inputs.items()}
        (work / ".inputs.pickle").write_bytes(pickle.dumps(lazy))
        python = [sys.executable, "-I", str(_RUNNER), entry, ".inputs.pickle", limits.to_json()]
        argv = (_bwrap_argv(bwrap, work, hidden or []) if bwrap else []) + python
        start = _start_subprocess(argv, work, log, result_w)
    supervisor = os.fork()
    if supervisor == 0:
        code = 70
        try:
            os.close(result_r)
            os.close(control_w)
            code = _supervise(start, control_r)
        finally:
            os._exit(code)
    os.close(result_w)
    os.close(control_r)
    reading = _Reading(set(inputs), Report())
    try:
        stopped = _collect(result_r, reading, timeout)
    finally:
        os.close(result_r)
        os.close(control_w)  # tells the supervisor to kill whatever is left
        code = _reap(supervisor)
        tail = _log_tail(log)
        os.close(log)
        shutil.rmtree(root, ignore_errors=True)
    report = reading.report
    if stopped is None and not reading.done:
        stopped = _why(code, limits, tail)
    report.stopped = stopped or ""
    if stopped:
        report.errors.append(stopped)
    return report
