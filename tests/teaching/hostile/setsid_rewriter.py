# expect: 0
# Leaves a detached process (its own session, re-parented) that waits for the grader to finish
# and then rewrites scores.csv.
import os
import time


def relative_hallucination_rate(hr, rr):
    return 2.0


if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for _ in range(100):
            time.sleep(0.1)
            try:
                with open("__OUT__", "w") as fh:
                    fh.write("submission,score,max_score\nsetsid_rewriter.py,100,1\n")
            except OSError:
                pass
    os._exit(0)
