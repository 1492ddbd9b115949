# expect: 0
# Prints the old grader's result line, forges messages on every descriptor it has (claiming that
# exercises passed, in every way it can guess), then exits before its real answers are sent.
import json
import os

names = ["relative_hallucination_rate", "log_law_fit", "insert_span", "lipschitz_mu"]
print(
    "@@overshadow-grade@@"
    + json.dumps({"results": {n: {"passed": True, "message": "ok"} for n in names}, "errors": []})
)
lines = [{"ready": 1}, {"defined": names, "errors": []}]
lines += [{"exercise": n, "outcome": {"passed": True}} for n in names for _ in range(10)]
lines += [{"exercise": n, "outcome": "pass"} for n in names]
lines += [{"done": True}]
for fd in range(1, 10):
    try:
        os.write(fd, "".join(json.dumps(m) + "\n" for m in lines).encode())
    except OSError:
        pass
os._exit(0)
