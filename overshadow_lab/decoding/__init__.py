"""Contrastive decoding against knowledge overshadowing: CoDA and its baselines.

CoDA {zhang2025law} masks one candidate span of the prompt at a time, raises an alarm when the
answer ignores a span, and decodes with a contrast that amplifies what that span contributes.
The subpackage, one concern per module:

* :mod:`~overshadow_lab.decoding.coda`: the definition: :class:`CoDAConfig`, the arithmetic of
  one step (:func:`plausible`, :func:`coda_step`, :func:`relative_pmi`), :func:`alarm_metrics`
  and the readable reference loop :func:`coda_reference`;
* :mod:`~overshadow_lab.decoding.spans`: candidate spans and masking;
* :mod:`~overshadow_lab.decoding.padding`: left padding of a batch of token-id lists;
* :mod:`~overshadow_lab.decoding.kv_cache`: the KV-cache engine, the only module that knows
  transformers' cache internals;
* :mod:`~overshadow_lab.decoding.packing`: detection's masked variants laid end to end in rows
  under a 4-D attention mask, the only module that builds one;
* :mod:`~overshadow_lab.decoding.processors`: :class:`CoDALogitsProcessor`, CoDA inside
  ``model.generate``, tested to equal the reference loop token for token;
* :mod:`~overshadow_lab.decoding.baselines`: CAD, expert-amateur contrastive decoding and DoLa;
* :mod:`~overshadow_lab.decoding.driver`: :func:`generate`, any method on lists of token ids.

This module only re-exports; ``_next_logprobs`` (one plain forward pass) is re-exported too, as
the book and the benchmark evaluation use it.
"""

from overshadow_lab.decoding.baselines import (
    CADLogitsProcessor,
    ContrastiveDecodingLogitsProcessor,
    DoLaLogitsProcessor,
    dola_layers,
)
from overshadow_lab.decoding.coda import (
    DETECTS,
    EMPTY_S,
    MASKS,
    SELECTS,
    CoDAConfig,
    CoDAStep,
    Detection,
    _next_logprobs,
    alarm_metrics,
    coda_reference,
    coda_step,
    plausible,
    relative_pmi,
    with_options,
)
from overshadow_lab.decoding.driver import METHODS, DecodeResult, generate
from overshadow_lab.decoding.padding import left_pad
from overshadow_lab.decoding.processors import CoDALogitsProcessor
from overshadow_lab.decoding.spans import CANDIDATES, candidate_spans, mask_span

__all__ = [
    "CANDIDATES",
    "DETECTS",
    "EMPTY_S",
    "MASKS",
    "METHODS",
    "SELECTS",
    "CADLogitsProcessor",
    "CoDAConfig",
    "CoDALogitsProcessor",
    "CoDAStep",
    "ContrastiveDecodingLogitsProcessor",
    "DecodeResult",
    "Detection",
    "DoLaLogitsProcessor",
    "_next_logprobs",
    "alarm_metrics",
    "candidate_spans",
    "coda_reference",
    "coda_step",
    "dola_layers",
    "generate",
    "left_pad",
    "mask_span",
    "plausible",
    "relative_pmi",
    "with_options",
]
