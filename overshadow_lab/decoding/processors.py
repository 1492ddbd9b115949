"""CoDA as a ``transformers`` logits processor: the fast, batched, cached version of the loop.

:func:`~overshadow_lab.decoding.coda.coda_reference` recomputes every distribution from scratch;
:class:`CoDALogitsProcessor` gives the same tokens inside ``model.generate``, evaluating the masked
variants of a batch of prompts in a few batched forward passes that reuse the prompts' KV caches
(:mod:`overshadow_lab.decoding.kv_cache`). Each call does two things, in two methods: detection
(:meth:`CoDALogitsProcessor._detect`: the alarm and the chosen span of each prompt) and the
contrast (:meth:`CoDALogitsProcessor._contrast`: the amplified scores of the flagged prompts).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from transformers import LogitsProcessor

from overshadow_lab.decoding.coda import CoDAConfig, Detection, _amplified, _choose, _indicators
from overshadow_lab.decoding.kv_cache import _Prefix, _Stream, _StreamGroup
from overshadow_lab.decoding.packing import _PackedGroup, can_pack, worth_packing
from overshadow_lab.decoding.spans import candidate_spans, mask_span


class CoDALogitsProcessor(LogitsProcessor):
    """CoDA as a ``transformers`` logits processor: ``model.generate(..., logits_processor=[p])``.

    ``prompts`` are the unpadded token ids of the batch given to ``generate`` (left-padded there),
    in the same order; ``spans`` optionally gives each prompt's candidate spans. At the first call
    every masked variant of every prompt goes through the model in batched forward passes of at
    most ``config.variant_batch_size`` variants; with ``config.share_prefix`` each variant reuses
    its prompt's KV cache for the tokens before its masked span. With ``detect="once"`` only the
    flagged prompts then keep a KV cache for their masked prompt X' (made at the second call,
    together with the first generated token), extended by one token per step, while generate
    keeps X's. Works with greedy search and with sampling (it returns scores, not tokens).
    ``prompt_cache`` optionally is the KV cache object given to generate (``generate(...,
    cache=c)``, ``past_key_values=c`` before transformers 5; :func:`generate` does this): at the
    first call it holds the prompts' keys and values, so the prompts need no pass of their own
    (without it they get one). After generation, ``detections`` holds one :class:`Detection` per
    prompt.

    **State across calls.** generate calls the processor once per generated token; ``_calls``
    counts the calls, and what a call does depends only on that count and ``config.detect``:

    * call 1 (``input_ids`` are the prompts): every masked variant goes through the model
      (:attr:`_group`), detection fills ``detections``, the flagged prompts are contrasted. With
      ``detect="once"`` the variants' streams are then dropped and the masked prompts X' of the
      flagged prompts (:attr:`_active`) wait in :attr:`_pending` for the next token.
    * calls 2, 3, ... with ``detect="every_step"``: every variant's stream is extended by the
      token generated last and detection runs again; the contrast uses this step's choice.
    * calls 2, 3, ... with ``detect="once"``: only the flagged prompts' X' are needed; call 2
      starts their stream (:attr:`_stream`) from :attr:`_pending` plus the first generated
      token, later calls extend it by one token. With ``amplify=False`` nothing is computed.

    A processor serves one ``generate`` call: build a new one for the next batch.
    """

    def __init__(
        self,
        model,
        prompts: Sequence[Sequence[int]],
        config: CoDAConfig | None = None,
        spans: Sequence[list[tuple[int, int]]] | None = None,
        tokenizer=None,
        pad_token_id: int = 0,
        prompt_cache=None,
    ):
        self.model, self.config = model, config or CoDAConfig()
        self.prompt_cache = prompt_cache
        self.prompts = [[int(t) for t in p] for p in prompts]
        cfg = self.config
        if spans is None:
            spans = [
                candidate_spans(p, cfg.candidates, tokenizer, cfg.max_candidates, cfg.exclude_final)
                for p in self.prompts
            ]
        if len(spans) != len(self.prompts):
            raise ValueError(f"got {len(spans)} span lists for {len(self.prompts)} prompts")
        self.spans = [list(s) for s in spans]
        self.pad_token_id = int(pad_token_id)
        self.detections: list[Detection] = []
        self.n_variants = sum(len(s) for s in self.spans)
        # the variants of prompt b are rows _offsets[b] to _offsets[b + 1] of the variant list
        self._offsets = [0]
        for s in self.spans:
            self._offsets.append(self._offsets[-1] + len(s))
        self._calls = 0
        # every variant (call 1; every_step: all calls)
        self._group: _StreamGroup | _PackedGroup | None = None
        self._owner: list[int] = []  # the prompt of each variant
        self._active: list[int] = []  # detect="once": the flagged prompts ...
        self._pending: tuple[list[list[int]], tuple | None] | None = None  # ... their X' ...
        self._stream: _Stream | None = None  # ... and its stream from call 2 on
        self._released = False  # the stream was handed over (release_masked_stream)

    # ---- the calls -----------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[0] != len(self.prompts):
            raise ValueError(
                f"CoDALogitsProcessor was built for {len(self.prompts)} prompts but generate passed "
                f"{input_ids.shape[0]} rows; build it with the same prompts (num_beams=1, "
                "num_return_sequences=1)"
            )
        if self._released:
            raise RuntimeError(
                "the masked prompts' stream was handed over (release_masked_stream): pass their "
                "log-probabilities to contrast_with instead of calling the processor"
            )
        logp = F.log_softmax(scores.float(), dim=-1)
        self._calls += 1
        if self._calls == 1:
            rows, masked = self._first_detection(input_ids, logp)
        elif self.config.detect == "every_step":
            if self._group is not None:
                self._group.step(input_ids[self._owner, -1])
            rows, masked = self._detect(logp)
        else:
            rows, masked = self._flagged_masked(input_ids)
        return self._contrast(scores, logp, rows, masked)

    def _first_detection(
        self, input_ids: torch.Tensor, logp: torch.Tensor
    ) -> tuple[list[int], torch.Tensor | None]:
        """Call 1: every masked variant through the model, detection, and (``detect="once"``)
        the flagged prompts' X' set aside for call 2."""
        cfg = self.config
        self.detections = [Detection(False, None, -math.inf, [], []) for _ in self.prompts]
        seqs, self._owner, spans = self._variants()
        prefix = self._shared_prefix(input_ids) if seqs else None
        if seqs:
            starts = self._starts(seqs, spans)
            if prefix is not None and self._packs():
                self._group = _PackedGroup(
                    self.model,
                    [s[a:] for s, a in zip(seqs, starts, strict=True)],
                    self._owner,
                    starts,
                    prefix,
                    self.pad_token_id,
                )
            else:
                self._group = _StreamGroup(
                    self.model,
                    seqs,
                    cfg.variant_batch_size,
                    self._owner,
                    self.pad_token_id,
                    keep_cache=cfg.detect == "every_step",
                    prefix=prefix,
                    starts=starts,
                )
        rows, masked = self._detect(logp, record=True)
        if cfg.detect == "once":
            self._group = None  # the all-variant pass kept no cache worth keeping
            self._active = rows
            if rows and cfg.amplify:
                self._pending = self._masked_prompts(rows, prefix)
        return rows, masked

    def _packs(self) -> bool:
        """Whether call 1 packs the variants into rows (:mod:`~overshadow_lab.decoding.packing`):
        asked for, detection once (no variant is stepped after it), a model it can run and a
        batch of short prompts (:func:`~overshadow_lab.decoding.packing.worth_packing`)."""
        cfg = self.config
        if not (cfg.pack_variants and cfg.detect == "once"):
            return False
        return can_pack(self.model) and worth_packing(self.prompts)

    def _flagged_masked(self, input_ids: torch.Tensor) -> tuple[list[int], torch.Tensor | None]:
        """Calls 2, 3, ... with ``detect="once"``: ``log p(.|X')`` of the flagged prompts, their
        stream started at call 2 and extended by one token per call after."""
        if not self._active or not self.config.amplify:
            return [], None
        rows = list(self._active)
        if self._pending is None:
            return rows, self._stream.step(input_ids[rows, -1])
        (seqs, part), self._pending = self._pending, None
        # p(.|X') at call 1 came from the detection: X' goes through the model now, with the
        # first generated token, in one pass
        tokens = input_ids[rows, -1].tolist()
        seqs = [s + [t] for s, t in zip(seqs, tokens, strict=True)]
        self._stream = _Stream(self.model, seqs, self.pad_token_id, prefix=part)
        return rows, self._stream.logp

    # ---- handing the masked stream to a caller that steps it ----------------------------------
    def release_masked_stream(self) -> tuple[list[int], _Stream | None]:
        """After call 2 with ``detect="once"``: the flagged prompts and the stream of their
        masked prompts X', handed over so that a caller can step it in the same forward pass as
        generation's own rows (:func:`~overshadow_lab.decoding.driver.generate` does). From then
        on the caller passes ``log p(.|X')`` of those rows to :meth:`contrast_with`."""
        if self.config.detect != "once" or self._calls != 2:
            raise RuntimeError("release_masked_stream is for detect='once', right after call 2")
        self._released = True
        stream, self._stream = self._stream, None
        return list(self._active), stream

    def contrast_with(self, scores: torch.Tensor, masked: torch.Tensor | None) -> torch.Tensor:
        """Calls 3, 4, ... after :meth:`release_masked_stream`: what ``__call__`` returns, given
        ``masked``, the flagged prompts' ``log p(.|X')`` at this step (row for row)."""
        self._calls += 1
        if not self._active or not self.config.amplify or masked is None:
            return scores
        logp = F.log_softmax(scores.float(), dim=-1)
        return self._contrast(scores, logp, list(self._active), masked)

    # ---- detection and contrast --------------------------------------------------------------
    def _detect(
        self, logp: torch.Tensor, record: bool = False
    ) -> tuple[list[int], torch.Tensor | None]:
        """The alarm of each prompt from the variants' current log-probabilities.

        Computes the indicator of every candidate span, chooses one span per prompt
        (``config.select``) and returns the prompts whose alarm fires with the log-probabilities
        of their chosen masked variants, row for row (None when no alarm fires). ``record``
        stores each prompt's :class:`Detection` (at call 1).
        """
        if self._group is None:  # no prompt has a candidate span
            return [], None
        cfg = self.config
        found = _indicators(
            logp, self._group.runs(), cfg.alpha, cfg.empty_s, cfg.reduce, cfg.escape
        )
        indicator = found[self._group.position.to(found.device)]  # rows -> variants
        rows: list[int] = []  # the prompts whose scores become the contrast ...
        picks: list[int] = []  # ... and the masked variants they are contrasted with
        for b, spans in enumerate(self.spans):
            lo, hi = self._offsets[b], self._offsets[b + 1]
            if lo == hi:
                continue
            ind = indicator[lo:hi]
            k = _choose(ind, cfg.select, cfg.threshold)
            alarm = bool(ind[k] > cfg.threshold)
            if alarm:
                rows.append(b)
                picks.append(lo + k)
            if record:
                self.detections[b] = Detection(
                    alarm, spans[k], float(ind[k]), list(spans), ind.tolist()
                )
        return rows, (self._group.rows(picks) if picks else None)

    def _contrast(
        self,
        scores: torch.Tensor,
        logp: torch.Tensor,
        rows: list[int],
        masked: torch.Tensor | None,
    ) -> torch.Tensor:
        """CoDA's amplified scores for ``rows`` (from ``log p(.|X)`` and their ``log p(.|X')``,
        ``masked``); every other row, and a row with no plausible token left, keeps ``scores``."""
        if not self.config.amplify or not rows:
            return scores
        cfg = self.config
        rows_t = torch.as_tensor(rows, device=scores.device)
        new = _amplified(logp[rows_t], masked, cfg.alpha, cfg.empty_s, cfg.escape)
        keep = torch.isfinite(new).any(-1)
        out = scores.clone()
        out[rows_t[keep]] = new[keep].to(scores.dtype)
        return out

    # ---- the masked sequences ------------------------------------------------------------------
    def _variants(self) -> tuple[list[list[int]], list[int], list[tuple[int, int]]]:
        """Every masked prompt, prompt after prompt, with its prompt's index and its span."""
        seqs, owner, spans = [], [], []
        cfg = self.config
        for b, prompt in enumerate(self.prompts):
            for sp in self.spans[b]:
                seqs.append(mask_span(prompt, sp, cfg.mask, cfg.mask_token_id))
                owner.append(b)
                spans.append(sp)
        return seqs, owner, spans

    def _masked_prompts(
        self, rows: Sequence[int], prefix: _Prefix | None
    ) -> tuple[list[list[int]], tuple | None]:
        """The masked prompts X' of ``rows`` (each with its chosen span) and, with a shared
        prefix, the cached tokens they start with (the X' then hold only the tokens after)."""
        cfg = self.config
        spans = [self.detections[b].span for b in rows]
        seqs = [
            mask_span(self.prompts[b], sp, cfg.mask, cfg.mask_token_id)
            for b, sp in zip(rows, spans, strict=True)
        ]
        if prefix is None:
            return seqs, None
        starts = self._starts(seqs, spans)
        return [s[a:] for s, a in zip(seqs, starts, strict=True)], prefix.take(rows, starts)

    @staticmethod
    def _starts(seqs: Sequence[Sequence[int]], spans: Sequence[tuple[int, int]]) -> list[int]:
        """How many first tokens of each masked prompt equal its prompt's: those before the
        masked span (at least one token of every sequence is left to go through the model)."""
        return [min(sp[0], len(s) - 1) for s, sp in zip(seqs, spans, strict=True)]

    def _shared_prefix(self, input_ids: torch.Tensor) -> _Prefix | None:
        """The prompts' KV cache for the variants to share, or None where it is not used."""
        cfg = self.config
        if not cfg.share_prefix or cfg.variant_batch_size == 1:
            return None  # one plain pass per variant stays the plain baseline
        if self.prompt_cache is not None:
            prefix = _Prefix.from_cache(self.prompt_cache, self.prompts, input_ids)
            if prefix is not None:
                return prefix
        return _Prefix.compute(self.model, self.prompts, self.pad_token_id)
