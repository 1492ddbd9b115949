# expect: 0
# Prints without end before its function is defined: the output limit stops it.
line = "x" * 2**20
while True:
    print(line)


def relative_hallucination_rate(hr, rr):
    return 100 * hr / rr
