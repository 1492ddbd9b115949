# expect: 0
# Replaces the reference with its own wrong answer and empties the cases, wherever a registry
# of exercises is loaded in its process.
import sys


def relative_hallucination_rate(hr, rr):
    return 0.0


for module in list(sys.modules.values()):
    registry = getattr(module, "REGISTRY", None)
    if isinstance(registry, dict) and "relative_hallucination_rate" in registry:
        registry["relative_hallucination_rate"].reference = relative_hallucination_rate
        registry["relative_hallucination_rate"].cases = []
        registry["relative_hallucination_rate"]._inputs = []
