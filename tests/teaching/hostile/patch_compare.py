# expect: 0
# Makes every comparison succeed wherever one is loaded, answers with an object equal to
# everything, and makes the plain-data encoder claim 50.0 (the first case's right answer).
import sys

import numpy as np


class Anything:
    def __eq__(self, other):
        return True

    def __float__(self):
        return 50.0


def relative_hallucination_rate(hr, rr):
    return Anything()


for module in list(sys.modules.values()):
    if hasattr(module, "close") and hasattr(module, "to_plain"):
        module.close = lambda *args, **kwargs: True
        module.to_plain = lambda *args, **kwargs: 50.0
np.allclose = lambda *args, **kwargs: True
