"""The KV-cache engine: batched, cached streams of token sequences, and prompt prefixes to share.

CoDA runs every masked variant of every prompt through the model; this module makes that cheap.
A :class:`_Stream` is a left-padded batch of sequences with a KV cache, extended one token per
step (two streams can be merged into one, :meth:`_Stream.merged`, to share each step's pass); a :class:`_StreamGroup` is many sequences sorted by length and cut into such streams (the
cut chosen by :func:`_split`); a :class:`_Prefix` is the KV cache of a batch of prompts, cut into
the prefixes that their masked variants share, so a variant feeds only its tokens from the masked
span on.

**Dependency on transformers' internals.** This is the only module of the package that reads a
KV cache's insides, and it does so by duck typing and by class *name*:

* :func:`_cache_layers` reads per-layer keys and values from a cache's ``layers`` (transformers
  >= 4.56), accepting only layers whose class is named ``DynamicLayer`` (plain keys and values:
  not sliding-window, quantised or offloaded layers); from a cache whose class is named
  ``DynamicCache`` with ``key_cache``/``value_cache`` lists (before 4.56); or from the legacy
  tuple format. Anything else returns None and CoDA falls back to full passes (slower, same
  results).
* :func:`_make_cache` and :func:`_cache_for_generate` build ``transformers.DynamicCache``
  objects (``DynamicCache(config=...)`` from 4.56, ``DynamicCache()`` before).
* :class:`_OnePassLayer` subclasses ``DynamicLayer`` (transformers >= 4.56) for the caches of
  detection passes, whose keys and values are never read after the pass: they are allocated once
  with room for the pass's own tokens, which ``update`` writes in place instead of concatenating
  (the same numbers, one copy of the prefix fewer per layer). Without ``DynamicLayer`` those
  passes use a plain ``DynamicCache``.
* :func:`_forward_kwargs` finds the cache argument's name in ``model.forward``'s signature
  (``cache`` from transformers 5.2x, ``past_key_values`` before) and whether the model takes
  ``logits_to_keep``.

A transformers release that renames these breaks only this module; ``tests/decoding/
test_kv_cache.py`` checks that a cached prefix plus a continuation equals a full forward pass.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from overshadow_lab.decoding.padding import left_pad, positions

try:  # transformers >= 4.56: a cache is a list of layers
    from transformers.cache_utils import DynamicLayer
except ImportError:  # pragma: no cover - older transformers: passes copy the prefix once more
    DynamicLayer = None


def _forward_kwargs(model) -> tuple[str, bool]:
    """The cache argument's name (``cache`` from transformers 5.2x, ``past_key_values`` before)
    and whether the model can compute logits for the last position only."""
    params = inspect.signature(model.forward).parameters
    return ("cache" if "cache" in params else "past_key_values"), "logits_to_keep" in params


def _cache_layers(cache) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """Each layer's ``(keys, values)``, shaped ``(batch, heads, length, head_dim)``, of a KV cache;
    None for a cache that cannot be cut into prefixes (sliding windows, recurrent states,
    quantised or offloaded layers: anything but plain per-layer keys and values)."""
    if cache is None:
        return None
    if isinstance(cache, (tuple, list)):  # the legacy format
        pairs = [tuple(layer[:2]) for layer in cache]
    elif hasattr(cache, "layers"):  # transformers >= 4.56
        if getattr(cache, "offloading", False):
            return None
        pairs = []
        for layer in cache.layers:
            if type(layer).__name__ != "DynamicLayer":
                return None
            pairs.append((layer.keys, layer.values))
    elif type(cache).__name__ == "DynamicCache" and hasattr(cache, "key_cache"):
        pairs = list(zip(cache.key_cache, cache.value_cache, strict=True))
    else:
        return None
    ok = all(isinstance(t, torch.Tensor) and t.dim() == 4 for pair in pairs for t in pair)
    return pairs if pairs and ok else None


def _cache_for_generate(model, generate_kwargs: dict) -> tuple[str, Any] | None:
    """``(argument, cache)``: an empty ``DynamicCache`` to hand to generate, so that CoDA reads
    the prompts' keys and values after generate's first pass; None where generate should keep
    choosing its own cache (a cache or cache type asked for, no cache, another cache class)."""
    argument = _forward_kwargs(model)[0]
    if argument in generate_kwargs or generate_kwargs.get("use_cache") is False:
        return None
    if generate_kwargs.get("cache_implementation"):
        return None
    if getattr(getattr(model, "generation_config", None), "cache_implementation", None):
        return None
    supports = getattr(model, "_supports_default_dynamic_cache", None)
    if callable(supports) and not supports():
        return None
    try:
        return argument, DynamicCache(config=model.config)
    except TypeError:  # transformers before 4.56
        return argument, DynamicCache()


def _make_cache(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]]):
    """A ``DynamicCache`` holding the given per-layer keys and values."""
    cache = DynamicCache()
    for i, (keys, values) in enumerate(pairs):
        cache.update(keys, values, i)
    return cache


if DynamicLayer is not None:

    class _OnePassLayer(DynamicLayer):
        """A cache layer for a single forward pass after a cached prefix: its keys and values are
        allocated with ``room`` columns after the prefix's ``filled``, and ``update`` writes the
        pass's keys and values there instead of concatenating them to a new tensor.

        ``DynamicLayer.update`` copies the whole prefix at every call (``torch.cat``); in a
        profiled detection pass over masked variants of MemoTrap prompts, copies of keys and
        values (these and the gather of the prefixes) took about a tenth of the time. This layer
        returns exactly the tensors ``DynamicLayer`` would (a view of the first ``filled``
        columns), so attention sees the same numbers; it grows like a ``DynamicLayer`` should a
        pass bring more tokens than ``room``.
        """

        def __init__(self, keys: torch.Tensor, values: torch.Tensor, filled: int):
            super().__init__()
            self.keys, self.values, self.filled = keys, values, int(filled)
            self.dtype, self.device = keys.dtype, keys.device
            self.is_initialized = True

        def update(self, key_states, value_states, *args, **kwargs):
            end = self.filled + key_states.shape[-2]
            if end > self.keys.shape[-2]:  # more tokens than the room made for them
                self.keys = torch.cat([self.keys[..., : self.filled, :], key_states], dim=-2)
                self.values = torch.cat([self.values[..., : self.filled, :], value_states], dim=-2)
            else:
                self.keys[..., self.filled : end, :] = key_states
                self.values[..., self.filled : end, :] = value_states
            self.filled = end
            return self.keys[..., :end, :], self.values[..., :end, :]

        def get_seq_length(self) -> int:
            return self.filled


def _prefix_cache(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]], width: int, room: int):
    """A cache holding the given per-layer keys and values (``width`` columns, given as
    ``(batch, length, heads, head_dim)`` views). With ``room`` > 0 it has that many more columns
    for one forward pass (:class:`_OnePassLayer`); otherwise, or without transformers'
    ``DynamicLayer``, it is a plain ``DynamicCache`` that later steps can extend."""
    if room <= 0 or DynamicLayer is None:
        return _make_cache((k.transpose(1, 2), v.transpose(1, 2)) for k, v in pairs)
    layers = []
    for keys, values in pairs:
        n, _, heads, dim = keys.shape
        k = keys.new_empty(n, heads, width + room, dim)
        v = values.new_empty(n, heads, width + room, dim)
        k[:, :, :width] = keys.transpose(1, 2)
        v[:, :, :width] = values.transpose(1, 2)
        layers.append(_OnePassLayer(k, v, width))
    cache = DynamicCache()
    cache.layers = layers
    return cache


class _Prefix:
    """The KV cache of a batch of prompts, cut into the prefixes that their masked variants share.

    A variant that masks the span ``[a, b)`` of prompt ``X`` (deleted or replaced) has ``X``'s
    first ``a`` tokens at ``X``'s positions, so its keys and values there are ``X``'s. ``pairs``
    holds each layer's keys and values of the prompts left-padded to ``width`` columns (the
    layout of generate's batch: prompt ``b`` in the last ``len(prompts[b])`` columns).
    """

    def __init__(self, pairs, prompts: Sequence[Sequence[int]], width: int):
        self.pairs, self.width = pairs, int(width)
        device = pairs[0][0].device
        self.lengths = torch.as_tensor([len(p) for p in prompts], dtype=torch.long, device=device)

    @classmethod
    def compute(cls, model, prompts: Sequence[Sequence[int]], pad_token_id: int = 0):
        """Run the prompts through the model (None if its cache cannot be cut)."""
        stream = _Stream(model, prompts, pad_token_id)
        pairs = _cache_layers(stream.cache)
        return cls(pairs, prompts, stream.mask.shape[1]) if pairs is not None else None

    @classmethod
    def from_cache(cls, cache, prompts: Sequence[Sequence[int]], input_ids: torch.Tensor):
        """The cache generate filled with ``input_ids`` (its prompts, left-padded) before its
        first call of the logits processors; None unless it holds exactly those tokens."""
        pairs = _cache_layers(cache)
        batch, width = input_ids.shape
        if pairs is None or any(k.shape[0] != batch or k.shape[2] != width for k, _ in pairs):
            return None
        for b, p in enumerate(prompts):
            if not p or input_ids[b, width - len(p) :].tolist() != list(p):
                return None
        return cls(pairs, prompts, width)

    def take(
        self, owners: Sequence[int], starts: Sequence[int], room: int = 0
    ) -> tuple[Any, torch.Tensor] | None:
        """A KV cache and its attention mask for rows that continue prompt ``owners[i]`` after
        its first ``starts[i]`` tokens, left-padded to the longest (None when every start is 0:
        nothing to share). It holds a copy of those keys and values, as much memory as the KV
        cache of the rows' first ``max(starts)`` tokens. With ``room`` > 0 the cache is for one
        forward pass of at most ``room`` tokens a row (:func:`_prefix_cache`) and must not be
        stepped or merged after it."""
        width = max(starts, default=0)
        if width == 0:
            return None
        device = self.lengths.device
        owner = torch.as_tensor(list(owners), dtype=torch.long, device=device)
        start = torch.as_tensor(list(starts), dtype=torch.long, device=device)
        j = torch.arange(width, device=device)
        valid = j >= (width - start).unsqueeze(1)
        # prompt b fills columns [W - len_b, W), so its position p is column W - len_b + p; the
        # row's padding (masked out) takes any real column
        col = (self.width - self.lengths[owner] + start - width).unsqueeze(1) + j
        col = torch.where(valid, col, torch.full_like(col, self.width - 1))
        row = owner.unsqueeze(1).expand_as(col)
        return self.gather(row, col, room), valid.long()

    def gather(self, row: torch.Tensor, col: torch.Tensor, room: int = 0):
        """A cache whose row ``r``, column ``c`` holds the keys and values of prompt
        ``row[r, c]`` at prefix column ``col[r, c]`` (both ``(rows, width)``), with ``room`` for
        one pass as in :func:`_prefix_cache`."""
        # one layer at a time: the cache copies it
        pairs = ((keys[row, :, col], values[row, :, col]) for keys, values in self.pairs)
        return _prefix_cache(pairs, col.shape[1], room)


class _Stream:
    """A left-padded batch of sequences with a KV cache, extended by one token per step.

    With ``prefix`` (a KV cache and its attention mask, from :meth:`_Prefix.take`), each
    sequence continues the cached tokens of its row: ``seqs`` holds only the tokens after them.
    """

    def __init__(
        self,
        model,
        seqs: Sequence[Sequence[int]],
        pad_token_id: int = 0,
        hidden_states: bool = False,
        keep_cache: bool = True,
        prefix: tuple[Any, torch.Tensor] | None = None,
    ):
        self.model, self.hidden, self.keep_cache = model, hidden_states, keep_cache
        ids, mask = left_pad(seqs, pad_token_id, next(model.parameters()).device)
        width = ids.shape[1]
        self.cache = None
        if prefix is not None:
            self.cache, prefix_mask = prefix
            mask = torch.cat([prefix_mask.to(mask), mask], dim=-1)
        self.mask = mask
        self.logp = self._forward(ids, positions(mask)[:, mask.shape[1] - width :])

    @torch.no_grad()
    def _forward(self, ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        cache_arg, keep = _forward_kwargs(self.model)
        kw: dict[str, Any] = {
            "attention_mask": self.mask,
            "position_ids": position_ids,
            cache_arg: self.cache,
            "use_cache": self.keep_cache or self.cache is not None,
        }
        if keep:
            kw["logits_to_keep"] = 1
        if self.hidden:
            kw["output_hidden_states"] = True
        out = self.model(ids, **kw)
        cache = out.get(cache_arg, None)  # the output names it as forward does
        self.cache = cache if self.keep_cache else None
        self.last_hidden = [h[:, -1] for h in out.hidden_states] if self.hidden else None
        self.logits = out.logits[:, -1]
        return F.log_softmax(self.logits.float(), dim=-1)

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Extend row ``i`` by ``tokens[i]``; returns (and keeps in ``logp``) the next-token
        log-probabilities."""
        position_ids = self.mask.sum(-1, keepdim=True)
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=-1)
        self.logp = self._forward(tokens.view(-1, 1), position_ids)
        return self.logp

    @classmethod
    def merged(cls, first: _Stream, second: _Stream) -> _Stream | None:
        """One stream holding the rows of ``first`` then those of ``second`` (same model), so
        that each later step is one forward pass for both: the shorter stream's keys, values and
        attention mask are padded on the left (masked out). None where a cache is not plain
        per-layer keys and values."""
        a, b = _cache_layers(first.cache), _cache_layers(second.cache)
        if a is None or b is None or len(a) != len(b):
            return None
        width = max(first.mask.shape[1], second.mask.shape[1])

        def widen(t: torch.Tensor, dim: int) -> torch.Tensor:
            missing = width - t.shape[dim]
            if missing == 0:
                return t
            shape = list(t.shape)
            shape[dim] = missing
            return torch.cat([t.new_zeros(shape), t], dim=dim)

        pairs = (
            (
                torch.cat([widen(ka, 2), widen(kb, 2)]),
                torch.cat([widen(va, 2), widen(vb, 2)]),
            )
            for (ka, va), (kb, vb) in zip(a, b, strict=True)
        )
        out = cls.__new__(cls)
        out.model, out.hidden, out.keep_cache = first.model, False, True
        out.cache = _make_cache(pairs)
        out.mask = torch.cat([widen(first.mask, 1), widen(second.mask, 1)])
        out.logits = torch.cat([first.logits, second.logits])
        out.logp = torch.cat([first.logp, second.logp])
        out.last_hidden = None
        return out


# what one more forward pass costs, in tokens fed through the model. SmolLM2-135M on two CPU
# cores, float32: a pass took about 60-100 ms plus 1.2 ms per token, and batched detection was
# fastest at 64. In bfloat16 a token costs about a third as much (the matrix units) while a pass
# costs about as much: batched detection was fastest at 128-256 and a MemoTrap row end to end
# at 192-384 (benchmarks/RESULTS.md).
_PASS_COST_TOKENS = 64
_PASS_COST_TOKENS_16BIT = 256


def _pass_cost(model) -> int:
    """The pass cost :func:`_split` weighs against padding, for the model's floating-point type."""
    embeddings = getattr(model, "get_input_embeddings", lambda: None)()
    weight = getattr(embeddings, "weight", None)  # a float32 output layer may sit beside it
    dtype = weight.dtype if weight is not None else next(model.parameters()).dtype
    return (
        _PASS_COST_TOKENS_16BIT if dtype in (torch.bfloat16, torch.float16) else _PASS_COST_TOKENS
    )


def _split(lengths: Sequence[int], most: int | None, pass_cost: int = _PASS_COST_TOKENS):
    """Cut rows sorted by length into consecutive chunks of at most ``most`` rows (None: no
    limit) that minimise the tokens fed, padding included, plus ``pass_cost`` per chunk."""
    n = len(lengths)
    if most is None or most >= n:  # no limit: cut only where the length changes
        cuts = [j for j in range(1, n + 1) if j == n or lengths[j] != lengths[j - 1]]
        before = lambda k, j: [0, *cuts[:k]]  # noqa: E731
    else:
        cuts = list(range(1, n + 1))
        before = lambda k, j: range(max(0, j - most), j)  # noqa: E731
    best, back = {0: 0.0}, {}
    for k, j in enumerate(cuts):
        best[j] = math.inf
        for i in before(k, j):
            cost = best[i] + pass_cost + (j - i) * lengths[j - 1]
            if cost < best[j]:
                best[j], back[j] = cost, i
    bounds, j = [], n
    while j:
        bounds.append((back[j], j))
        j = back[j]
    return bounds[::-1]


class _StreamGroup:
    """Many sequences, each of prompt ``owners[i]``, as chunks of streams (``chunk=None``: one
    chunk, one forward pass).

    Sequences are sorted by length before chunking, so a chunk pads little, and by prompt within
    a chunk. With ``prefix``, sequence ``i`` reuses the cached first ``starts[i]`` tokens of its
    prompt (which it must equal there) and only its tokens from ``starts[i]`` on go through the
    model; the sort is then by that length, and the chunks (at most ``chunk`` sequences,
    ``None``: no limit) are cut where that saves padding. The log-probabilities stay in the
    chunks' order (``order[j]`` is the sequence in row ``j``): :meth:`runs` reads them by prompt.
    """

    def __init__(
        self,
        model,
        seqs: Sequence[Sequence[int]],
        chunk: int | None,
        owners: Sequence[int],
        pad_token_id: int = 0,
        keep_cache: bool = True,
        prefix: _Prefix | None = None,
        starts: Sequence[int] = (),
    ):
        if prefix is not None:
            seqs = [s[a:] for s, a in zip(seqs, starts, strict=True)]
            key = lambda i: (len(seqs[i]), starts[i])  # noqa: E731
        else:
            key = lambda i: len(seqs[i])  # noqa: E731
        order = sorted(range(len(seqs)), key=key)
        if prefix is not None:
            self.bounds = _split([len(seqs[i]) for i in order], chunk, _pass_cost(model))
        else:
            chunk = chunk or max(1, len(seqs))
            self.bounds = [(i, min(i + chunk, len(seqs))) for i in range(0, len(seqs), chunk)]
        # within a chunk (padded to its longest anyway) the rows of a prompt are neighbours
        self.order = [
            i for a, b in self.bounds for i in sorted(order[a:b], key=lambda k: owners[k])
        ]
        self.owners = [owners[i] for i in self.order]
        self.streams = []
        for a, b in self.bounds:
            rows = self.order[a:b]
            ids = [seqs[i] for i in rows]
            # a pass whose cache is dropped after it gets a cache with room for its own tokens
            room = 0 if keep_cache else max(len(s) for s in ids)
            shared = (
                None
                if prefix is None
                else prefix.take(self.owners[a:b], [starts[i] for i in rows], room)
            )
            self.streams.append(
                _Stream(model, ids, pad_token_id, keep_cache=keep_cache, prefix=shared)
            )
            del shared  # without keep_cache, the pass's cache goes now
        self.position = torch.empty(len(seqs), dtype=torch.long)  # sequence -> row
        self.position[torch.as_tensor(self.order, dtype=torch.long)] = torch.arange(len(seqs))

    def runs(self):
        """``(prompt, rows)`` for each run of one prompt's rows within a chunk, in row order;
        ``rows`` is a view of the chunk's log-probabilities."""
        for stream, (a, b) in zip(self.streams, self.bounds, strict=True):
            lo = a
            for hi in range(a + 1, b + 1):
                if hi == b or self.owners[hi] != self.owners[lo]:
                    yield self.owners[lo], stream.logp[lo - a : hi - a]
                    lo = hi

    def rows(self, seqs: Sequence[int]) -> torch.Tensor:
        """The log-probabilities of the given sequences (by their index in ``seqs``)."""
        out = []
        for i in seqs:
            j = int(self.position[i])
            c = next(c for c, (a, b) in enumerate(self.bounds) if a <= j < b)
            out.append(self.streams[c].logp[j - self.bounds[c][0]])
        return torch.stack(out)

    def step(self, tokens: torch.Tensor) -> None:
        """Extend sequence ``i`` by ``tokens[i]``."""
        tokens = tokens[torch.as_tensor(self.order, device=tokens.device)]
        for stream, (a, b) in zip(self.streams, self.bounds, strict=True):
            stream.step(tokens[a:b])
