# expect: 1
# A right answer, and an attempt to kill its parent and the grader (every ancestor running the
# grader; a real attacker would kill everything it may, which the test must not risk).
import os
import signal
from pathlib import Path


def _ancestors():
    pid = os.getppid()
    while pid > 1:
        yield pid
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat[stat.rfind(")") + 2 :].split()[1])


for pid in list(_ancestors()):
    if b"overshadow_lab" in Path(f"/proc/{pid}/cmdline").read_bytes() or pid == os.getppid():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


# RIGHT ANSWER (the test puts the honest solution here)
