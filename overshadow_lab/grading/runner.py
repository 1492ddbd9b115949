"""The grader's child: confine this process, run ONE submission, report its answers as plain data.

This module runs on the student's side of the sandbox, either forked from the grader (which calls
:func:`serve`) or as a script in a fresh interpreter (``python -I runner.py ENTRY INPUTS LIMITS``,
inside bubblewrap when the machine has it). As a script it imports only the standard library,
NumPy and the exercise framework, loaded by path, so a child starts in well under a second
instead of importing torch with the whole package (inputs that are tensors still import torch).

Nothing this process sends is trusted. Once :func:`serve` has confined the process it runs the
student's code, which can patch anything here and write anything on the result descriptor; the
grader therefore reads these messages as the student's *claims about their answers* and computes
every verdict itself (:meth:`~overshadow_lab.exercises.framework.Exercise.judge`). The messages
are one JSON object per line on descriptor :data:`RESULT_FD`:

* ``{"ready": pid, "confined": [...]}``: the limits are in place (:func:`confine` lists
  them) and the student's code is about to run;
* ``{"defined": [...], "errors": [...]}``: every cell has run; the exercise functions defined;
* ``{"exercise": name, "outcome": {...}}``: one answer per input case, in order;
* ``{"done": true}``.
"""

from __future__ import annotations

import ctypes
import json
import os
import pickle
import platform
import resource
import sys
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import NoReturn

RESULT_FD = 3  # the descriptor the answers travel on; stdout and stderr go to a capped log
SUFFIXES = (".py", ".ipynb")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one submission's processes (``setrlimit``, soft = hard)."""

    cpu_seconds: int
    memory_bytes: int  # address space allowed on top of what the child holds when confined
    file_bytes: int  # largest file it may write, its captured output included
    processes: int  # extra processes/threads for its user (not enforced for root)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


# -- confinement ---------------------------------------------------------------------------------
# seccomp: signals and debugging reach only this process group, so a submission cannot kill or
# trace the grader or its supervisor (both run as the same user when there is no bubblewrap).
_SIGNALS = {  # machine: (audit arch, {name: syscall number}, seccomp, capset)
    "x86_64": (
        0xC000003E,
        dict(
            kill=62,
            tkill=200,
            tgkill=234,
            rt_sigqueueinfo=129,
            rt_tgsigqueueinfo=297,
            ptrace=101,
            process_vm_readv=310,
            process_vm_writev=311,
        ),
        317,
        126,
    ),
    "aarch64": (
        0xC00000B7,
        dict(
            kill=129,
            tkill=130,
            tgkill=131,
            rt_sigqueueinfo=138,
            rt_tgsigqueueinfo=240,
            ptrace=117,
            process_vm_readv=270,
            process_vm_writev=271,
        ),
        277,
        91,
    ),
}
_PIDFD = (424, 434, 438)  # pidfd_send_signal, pidfd_open, pidfd_getfd: one number everywhere
_ALLOW, _DENY = 0x7FFF0000, 0x00050000 | 1  # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO(EPERM)


class _Insn(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint),
    ]


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Insn))]


def _filter(arch: int, calls: dict[str, int], own_pid: int) -> list[tuple[int, int, int, int]]:
    """The BPF program: deny the listed calls, except ``kill(0, …)`` (own process group) and
    ``tgkill`` on this process (``raise()``); deny every call of a foreign ABI."""
    load, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    prog = [(load, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, _DENY), (load, 0, 0, 0)]
    if arch == 0xC000003E:  # the x32 ABI sets bit 30 of the number
        prog += [(jge, 0, 1, 0x40000000), (ret, 0, 0, _DENY)]
    plain = [n for k, n in calls.items() if k not in ("kill", "tgkill")] + list(_PIDFD)
    for nr in plain:
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, _DENY)]
    for nr, first_arg in ((calls["kill"], 0), (calls["tgkill"], own_pid)):
        # not this call: skip the block; else load the first argument and allow only first_arg
        prog += [
            (jeq, 0, 4, nr),
            (load, 0, 0, 16),
            (jeq, 0, 1, first_arg),
            (ret, 0, 0, _ALLOW),
            (ret, 0, 0, _DENY),
        ]
    return prog + [(ret, 0, 0, _ALLOW)]


def _seccomp(libc: ctypes.CDLL, table: tuple) -> None:
    arch, calls, nr_seccomp, _ = table
    insns = _filter(arch, calls, os.getpid())
    array = (_Insn * len(insns))(*[_Insn(*i) for i in insns])
    prog = _Prog(len(insns), array)
    # SECCOMP_SET_MODE_FILTER with TSYNC: every thread of the process, not only this one
    if libc.syscall(nr_seccomp, 1, 1, ctypes.byref(prog)) != 0:
        raise OSError(ctypes.get_errno(), "seccomp filter refused")


def _drop_capabilities(libc: ctypes.CDLL, nr_capset: int) -> None:
    """As root, give up every capability (raising limits, reading others' memory, …)."""
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()
    if libc.syscall(nr_capset, ctypes.byref(header), ctypes.byref(data)) != 0:
        raise OSError(ctypes.get_errno(), "capset refused")


def _user_tasks(uid: int) -> int:
    """Processes and threads of ``uid`` (what RLIMIT_NPROC counts)."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(ln.split(":", 1) for ln in status.read_text().splitlines() if ":" in ln)
        except OSError:
            continue
        if int(fields.get("Uid", "-1").split()[0]) == uid:
            total += int(fields.get("Threads", "1"))
    return total


def _address_space() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def confine(limits: Limits) -> list[str]:
    """Apply the limits to this process and its future children; return what was applied.

    The rlimits are set soft = hard so the submission cannot raise them; as root the
    capabilities that would allow it are dropped. Then, on Linux, no new privileges and the
    seccomp filter above. A protection this kernel refuses (an rlimit macOS lacks, seccomp on
    an old kernel) is left out of the list rather than stopping the grading.
    """
    applied = []
    used = resource.getrusage(resource.RUSAGE_SELF)  # the interpreter's own start-up
    wanted = [
        ("RLIMIT_CPU", int(used.ru_utime + used.ru_stime) + 1 + limits.cpu_seconds),
        ("RLIMIT_FSIZE", limits.file_bytes),
        ("RLIMIT_CORE", 0),
        ("RLIMIT_AS", _address_space() + limits.memory_bytes),
    ]
    if sys.platform == "linux":
        wanted.append(("RLIMIT_NPROC", _user_tasks(os.getuid()) + limits.processes))
    for name, value in wanted:
        res = getattr(resource, name)
        _, hard = resource.getrlimit(res)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        try:
            resource.setrlimit(res, (value, value))
            applied.append(name)
        except (ValueError, OSError):
            pass
    table = _SIGNALS.get(platform.machine())
    if sys.platform != "linux" or table is None:
        return applied
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) == 0:  # PR_SET_NO_NEW_PRIVS: no setuid way back up
        applied.append("no-new-privileges")
    steps = [("seccomp", lambda: _seccomp(libc, table))]
    if os.geteuid() == 0:
        steps.insert(0, ("no-capabilities", lambda: _drop_capabilities(libc, table[3])))
    for name, step in steps:
        try:
            step()
            applied.append(name)
        except OSError:
            pass
    return applied


# -- running the submission ------------------------------------------------------------------------
def code_cells(path: Path) -> list[str]:
    """The code of a submission as chunks run one after another (a folder: its files in order)."""
    if path.is_dir():
        chunks: list[str] = []
        for sub in sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file()):
            chunks += code_cells(sub)
        return chunks
    if path.suffix == ".py":
        return [path.read_text(encoding="utf-8")]
    nb = json.loads(path.read_text(encoding="utf-8"))
    chunks = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        # IPython magics and shell escapes are not Python: drop those lines
        lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        chunks.append("\n".join(lines))
    return chunks


def _send(message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(RESULT_FD, data) :]


def _execute(entry: Path) -> tuple[dict, list[str]]:
    """Run every cell of the submission in one namespace; a failing cell is noted, not fatal."""
    namespace: dict = {"__name__": "__submission__"}
    errors: list[str] = []
    try:
        chunks = code_cells(entry)
    except (OSError, ValueError) as err:
        return namespace, [f"could not read the submission: {type(err).__name__}: {err}"]
    for i, chunk in enumerate(chunks):
        try:
            exec(compile(chunk, f"{entry.name}[cell {i}]", "exec"), namespace)
        except BaseException as err:  # noqa: BLE001 - keep grading what was defined
            last = traceback.format_exception_only(type(err), err)[-1].strip()
            errors.append(f"cell {i}: {last}")
    return namespace, errors


def serve(entry: Path, inputs: dict[str, list], limits: Limits, framework: ModuleType) -> NoReturn:
    """Confine this process, run the submission at ``entry`` and send its answers; never returns.

    ``inputs`` maps each exercise to grade to its cases as a list of ``(args, kwargs)``, or that
    list pickled (unpickled only if the submission defines the exercise: tensor inputs import
    torch); ``framework`` is the exercise framework module (its ``answer`` turns a call into
    plain data).
    """
    code = 0
    try:
        _send({"ready": os.getpid(), "confined": confine(limits)})
        namespace, errors = _execute(entry)
        defined = [name for name in inputs if callable(namespace.get(name))]
        _send({"defined": defined, "errors": errors})
        for name in defined:
            cases = inputs[name]
            for args, kwargs in pickle.loads(cases) if isinstance(cases, bytes) else cases:
                try:
                    outcome = framework.answer(namespace[name], args, kwargs)
                except BaseException as err:  # noqa: BLE001 - SystemExit from a function, …
                    outcome = framework.raised(err)
                _send({"exercise": name, "outcome": outcome})
        _send({"done": True})
    except BaseException:  # noqa: BLE001 - report on the captured stderr, then stop
        traceback.print_exc()
        code = 70
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _load_framework() -> ModuleType:
    """The exercise framework, loaded by path: importing the package would import torch."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "exercises" / "framework.py"
    spec = importlib.util.spec_from_file_location("overshadow_grading_framework", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> NoReturn:
    """Script entry: ``runner.py ENTRY INPUTS.pickle LIMITS_JSON`` (run inside the work folder)."""
    # unpickling an input such as h_linear imports its module from this package's own copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    entry, inputs_path, limits = Path(argv[0]), Path(argv[1]), Limits(**json.loads(argv[2]))
    inputs = pickle.loads(inputs_path.read_bytes())  # written by the grader, read before any
    inputs_path.unlink()  # student code runs; each exercise's cases are pickled on their own
    serve(entry, inputs, limits, _load_framework())


if __name__ == "__main__":
    main(sys.argv[1:])
