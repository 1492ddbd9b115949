# expect: 1
# A right answer, and a grandchild in a new session that outlives its parent and the time limit.
import os
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(120)
    os._exit(0)


# RIGHT ANSWER (the test puts the honest solution here)
