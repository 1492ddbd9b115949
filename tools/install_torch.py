"""Install PyTorch into the running interpreter's environment, choosing the right build.

Called by `make` before the project itself is installed, so that pip never resolves the bare
`torch` requirement to a multi-GB CUDA build on a machine that has no GPU.

Order of preference:
1. torch is already importable (Colab, a conda env, an earlier run): keep it.
2. an NVIDIA driver is present (`nvidia-smi` on PATH): the default PyPI build (CUDA).
3. otherwise a CPU build: from PyTorch's CPU index when it resolves, else the pinned version
   from the configured package sources (this workplace serves a CPU wheel of it from disk).

Override with TORCH_SPEC (for example TORCH_SPEC="torch==2.5.1") and TORCH_INDEX_URL.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
DEFAULT_SPEC = "torch==2.13.0"


def _resolves(host: str, timeout: float = 3.0) -> bool:
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False
    finally:
        socket.setdefaulttimeout(old)


def main() -> int:
    if importlib.util.find_spec("torch") is not None:
        print("install_torch: torch already installed, keeping it")
        return 0
    spec = os.environ.get("TORCH_SPEC", DEFAULT_SPEC)
    cmd = [sys.executable, "-m", "pip", "install", "-q", spec]
    index = os.environ.get("TORCH_INDEX_URL")
    if index is None and shutil.which("nvidia-smi") is None:
        if _resolves("download.pytorch.org"):
            index = CPU_INDEX
    if index:
        cmd += ["--index-url", index]
    print("install_torch:", " ".join(cmd[3:]))
    return subprocess.call(cmd)


if __name__ == "__main__":
    raise SystemExit(main())
