# expect: 0
# Floods the private result descriptor with one endless line: the grader stops reading at its cap.
import os

junk = b"x" * 2**20
for fd in range(3, 10):
    try:
        while True:
            os.write(fd, junk)
    except OSError:
        pass
