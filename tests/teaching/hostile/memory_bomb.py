# expect: 1
# A right answer, then allocates without end: the memory limit stops that cell, not the grader.


# RIGHT ANSWER (the test puts the honest solution here)


def _bomb():
    hog = []
    while True:
        hog.append(bytes(64 * 2**20))  # calloc'd: address space, not resident memory


_bomb()
