# expect: 1
# A right answer, and an attempt to replace every classmate's file with a wrong one.
from pathlib import Path

WRONG = "def relative_hallucination_rate(hr, rr):\n    return -1.0\n"
for path in Path("__SUBMISSIONS__").glob("*.py"):
    if path.name != "overwrite_classmate.py":
        try:
            path.write_text(WRONG)
        except OSError:
            pass


# RIGHT ANSWER (the test puts the honest solution here)
