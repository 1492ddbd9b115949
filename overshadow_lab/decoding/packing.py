"""Packed detection: several masked variants in one row of a forward pass, none padded alone.

CoDA's detection feeds every masked variant of every prompt through the model once, for the
next-token distribution after it, and keeps no cache. Fed as one left-padded row each
(:class:`~overshadow_lab.decoding.kv_cache._StreamGroup`), the 122 variants of 8 MemoTrap chat
prompts fed 3,879 tokens in 4 passes for 3,045 after their shared prefixes, and a pass costs as
much as a few hundred tokens on a CPU. :class:`_PackedGroup` lays the variants end to end
instead, in rows of at most ``capacity`` tokens cut to pad the least (3,268 tokens in one pass
for those prompts: 19 rows of 172), and gives the model a 4-D attention mask under which each
variant sees exactly what it would see alone:

* the cached keys and values of its own prompt's tokens before its masked span (a row's cache
  holds, side by side, the columns of its variants' prompts that they see, gathered from the
  prompts' :class:`~overshadow_lab.decoding.kv_cache._Prefix`), and
* its own earlier tokens, causally; never another variant's.

Positions restart at each variant's start, so rotary embeddings see each variant's own positions.
Only each variant's last position reaches the output layer (a forward pre-hook on it picks those
hidden states), so the vocabulary projection runs once per variant, as with ``logits_to_keep=1``.

The mask is handed to the model as is: transformers passes a 4-D mask through unchanged, and
this module builds it for the two attention implementations whose mask convention it knows
(``sdpa`` and ``eager`` both add it to the attention scores: ``0`` where a query attends, the
dtype's minimum elsewhere). For any other implementation (flash attention takes no such mask)
or a cache this module cannot build, :func:`can_pack` says no, and for batches with long prompts
:func:`worth_packing` does (see :data:`PACK_MAX_PROMPT`): detection then keeps one row per
variant. The results are those of one plain pass per variant up to float rounding
(``tests/decoding/test_packing.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from overshadow_lab.decoding.kv_cache import DynamicLayer, _forward_kwargs, _Prefix

#: Attention implementations whose 4-D mask convention :func:`_mask_for` knows.
PACKABLE_ATTENTION = ("sdpa", "eager")

#: Tokens a packed row holds at most, unless a pass's longest variant is longer (rows are then as
#: long as it: a pass pads its rows to the longest anyway). Longer rows mean fewer rows and less
#: padding, but every token of a row attends over the whole row and its prompts' cache, most of
#: it masked: on SmolLM2-135M in bfloat16 on two CPU cores, detection over MemoTrap prompts was
#: fastest at 192 of 96-384 (``benchmarks/RESULTS.md``).
PACK_CAPACITY = 192

#: Tokens a packed pass feeds at most (its variants' own tokens, before row padding): a bound on
#: memory, not a speed setting. Fewer, fuller passes were faster: the 122 variants of 8 MemoTrap
#: chat prompts (3,045 tokens) took 0.97-1.00 s in one pass against 1.05 s in two passes of at
#: most 64 variants (SmolLM2-135M, bfloat16, two CPU cores), each pass leaving a last row short.
PACK_PASS_TOKENS = 8192

#: The longest prompt for which :func:`worth_packing` packs a batch. Packing saves the padding
#: of short variants and costs attention over masked columns: each token of a row attends over
#: the prompt columns of every variant in it. Long prompts have long variants, which pad little,
#: and long caches: on NQ-Swap's contexts (hundreds of tokens) a first version, whose rows held
#: the whole prompts, ran CoDA at 1.3-1.5 rows a minute against 3.4-4.0 with one padded row per
#: variant (``benchmarks/decode_speed.py``, part 4); with each row's cache cut to the columns its
#: variants see, part 4's 4 rows took 48 s either way (bfloat16): no gain, so no packing.
PACK_MAX_PROMPT = PACK_CAPACITY


def can_pack(model) -> bool:
    """Whether :class:`_PackedGroup` can run this model: a known attention mask convention, an
    output layer to pick positions at, and transformers' cache layers to write into."""
    impl = getattr(getattr(model, "config", None), "_attn_implementation", None)
    head = getattr(model, "get_output_embeddings", lambda: None)()
    return impl in PACKABLE_ATTENTION and head is not None and DynamicLayer is not None


def worth_packing(prompts: Sequence[Sequence[int]]) -> bool:
    """Whether packing should pay for this batch: every prompt at most :data:`PACK_MAX_PROMPT`
    tokens long."""
    return max((len(p) for p in prompts), default=0) <= PACK_MAX_PROMPT


def _fill(lengths: Sequence[int], width: int) -> list[list[int]]:
    """Cut the sequences, in order, into rows of at most ``width`` tokens, each row as full as the
    next sequence allows (a sequence longer than ``width`` alone in its row)."""
    rows: list[list[int]] = []
    filled = width + 1
    for i, n in enumerate(lengths):
        if filled + n > width:
            rows.append([])
            filled = 0
        rows[-1].append(i)
        filled += n
    return rows


def _passes(lengths: Sequence[int], pass_tokens: int) -> list[range]:
    """Cut the sequences, in order, into passes of at most ``pass_tokens`` tokens (a longer
    sequence alone in its pass)."""
    passes, lo, tokens = [], 0, 0
    for i, n in enumerate(lengths):
        if i > lo and tokens + n > pass_tokens:
            passes.append(range(lo, i))
            lo, tokens = i, 0
        tokens += n
    if lengths:
        passes.append(range(lo, len(lengths)))
    return passes


def _rows(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Cut the sequences, in order, into rows of at most ``capacity`` tokens (or the longest
    sequence, if longer), so that the pass feeds as few tokens as it can: a pass pads every row to
    its longest, so filling rows to ``capacity`` one after the other can leave each row a
    sequence's length short of the longest and the last row nearly empty. Of the row widths up to
    ``capacity``, the one whose filled rows times their longest is least wins (on a tie, the
    narrower: its tokens attend over fewer columns). Consecutive sequences of one prompt share a
    row's cache of that prompt. Trying every width took 3 ms for 122 sequences and 7 ms for 330
    (a full pass of ``PACK_PASS_TOKENS``), against a forward pass of about a second for 122."""
    if not lengths:
        return []
    longest = max(lengths)
    best, best_rows = None, []
    for width in range(longest, max(capacity, longest) + 1):
        rows = _fill(lengths, width)
        fed = len(rows) * max(sum(lengths[i] for i in row) for row in rows)
        if best is None or fed < best:
            best, best_rows = fed, rows
    return best_rows


def _mask_for(model, allowed: torch.Tensor) -> torch.Tensor:
    """The 4-D mask ``(rows, 1, queries, keys)`` that both known attention implementations take:
    added to the attention scores, ``0`` where a query attends and the dtype's minimum elsewhere.
    ``sdpa`` also takes ``allowed`` itself (a boolean mask), but its CPU kernel (PyTorch 2.13)
    was a little slower with it: 8.8-9.0 ms against 8.3-8.5 ms for one layer of a pass of 19 rows
    of SmolLM2-135M in bfloat16, 30 times a pass."""
    dtype = model.get_input_embeddings().weight.dtype
    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min).unsqueeze(1)


class _PackedGroup:
    """The next-token log-probabilities of masked variants, packed into rows (see the module).

    ``seqs[i]`` is variant ``i`` of prompt ``owners[i]`` from its ``starts[i]``-th token on (the
    tokens before it are the prompt's, cached in ``prefix``); variants of one prompt should be
    neighbours, so that they share a row's copy of their prompt. The variants go through the
    model in order, a pass holding as many as fit in ``pass_tokens`` tokens, in rows of at most
    ``capacity`` tokens (or the pass's longest variant, if longer).
    The interface is :class:`~overshadow_lab.decoding.kv_cache._StreamGroup`'s without ``step``
    (the cache is dropped after each pass): the variants keep their order (``position`` is the
    identity) and :meth:`runs` reads them by prompt.
    """

    def __init__(
        self,
        model,
        seqs: Sequence[Sequence[int]],
        owners: Sequence[int],
        starts: Sequence[int],
        prefix: _Prefix,
        pad_token_id: int = 0,
        capacity: int = PACK_CAPACITY,
        pass_tokens: int = PACK_PASS_TOKENS,
    ):
        if not len(seqs) == len(owners) == len(starts):
            raise ValueError("_PackedGroup needs one owner and one start per sequence")
        if any(len(s) == 0 for s in seqs):
            raise ValueError("_PackedGroup: every variant needs at least one token to feed")
        self.owners = [int(b) for b in owners]
        parts = []
        for ids in _passes([len(s) for s in seqs], pass_tokens):
            lengths = [len(seqs[i]) for i in ids]
            rows = [[ids[j] for j in row] for row in _rows(lengths, capacity)]
            parts.append(_packed_pass(model, rows, seqs, self.owners, starts, prefix, pad_token_id))
        self.logp = torch.cat(parts) if parts else torch.empty(0)
        self.position = torch.arange(len(seqs))

    def runs(self):
        """``(prompt, rows)`` for each prompt's consecutive variants, in order; ``rows`` is a view
        of their log-probabilities."""
        lo = 0
        for hi in range(1, len(self.owners) + 1):
            if hi == len(self.owners) or self.owners[hi] != self.owners[lo]:
                yield self.owners[lo], self.logp[lo:hi]
                lo = hi

    def rows(self, seqs: Sequence[int]) -> torch.Tensor:
        """The log-probabilities of the given sequences (by their index)."""
        return self.logp[torch.as_tensor(list(seqs), dtype=torch.long, device=self.logp.device)]


@torch.no_grad()
def _packed_pass(model, rows, seqs, owners, starts, prefix: _Prefix, pad: int) -> torch.Tensor:
    """One forward pass over ``rows`` (lists of sequence indices, each at most a row's worth of
    tokens): the next-token log-probabilities after each of those sequences, in row order."""
    lengths, width = prefix.lengths.tolist(), prefix.width
    # row r's cache holds, of each prompt b of its variants, the columns before the latest start
    # of b's variants in r: what they see of their prompt (not the whole prompt: every query
    # attends over every column of its row's cache, masked or not)
    needs = []
    for row in rows:
        need: dict[int, int] = {}
        for i in row:
            need[owners[i]] = max(need.get(owners[i], 0), int(starts[i]))
        needs.append(need)
    cached = max(1, max(sum(need.values()) for need in needs))
    queries = max(sum(len(seqs[i]) for i in row) for row in rows)
    n_rows = len(rows)
    # the cache of row r: those columns of its prompts, side by side (padding: any column,
    # masked); prompt b's real tokens are the last lengths[b] of the prefix's ``width`` columns
    src_row = torch.zeros(n_rows, cached, dtype=torch.long)
    src_col = torch.full((n_rows, cached), width - 1, dtype=torch.long)
    allowed = torch.zeros(n_rows, queries, cached + queries, dtype=torch.bool)
    ids = torch.full((n_rows, queries), int(pad), dtype=torch.long)
    pos = torch.zeros(n_rows, queries, dtype=torch.long)
    last_row, last_col = [], []
    for r, row in enumerate(rows):
        block, col = {}, 0
        for b, n in needs[r].items():
            src_row[r, col : col + n] = b
            first = width - lengths[b]
            src_col[r, col : col + n] = torch.arange(first, first + n)
            block[b], col = col, col + n
        q = 0
        for i in row:
            n, a, b = len(seqs[i]), int(starts[i]), owners[i]
            ids[r, q : q + n] = torch.as_tensor(list(seqs[i]))
            pos[r, q : q + n] = torch.arange(a, a + n)
            allowed[r, q : q + n, block[b] : block[b] + a] = True  # its prompt before the span
            own = cached + q
            allowed[r, q : q + n, own : own + n] = torch.ones(n, n, dtype=torch.bool).tril()
            last_row.append(r)
            last_col.append(q + n - 1)
            q += n
        pad_q = torch.arange(q, queries)
        allowed[r, pad_q, cached + pad_q] = True  # padding sees itself: no row of all -inf
    device = prefix.lengths.device
    cache = prefix.gather(src_row.to(device), src_col.to(device), room=queries)
    cache_arg, keep = _forward_kwargs(model)
    kw = {
        "attention_mask": _mask_for(model, allowed.to(device)),
        "position_ids": pos.to(device),
        cache_arg: cache,
        "use_cache": True,
    }
    if keep:
        kw["logits_to_keep"] = 0  # every position reaches the output layer's hook, which picks
    pick_row = torch.as_tensor(last_row, device=device)
    pick_col = torch.as_tensor(last_col, device=device)

    def pick(module, args):
        return (args[0][pick_row, pick_col].unsqueeze(0), *args[1:])

    handle = model.get_output_embeddings().register_forward_pre_hook(pick)
    try:
        logits = model(ids.to(device), **kw).logits
    finally:
        handle.remove()
    # the pass's sequences in row order, which is their order in ``seqs``
    return F.log_softmax(logits[0].float(), dim=-1)
