"""The KV-cache engine: cached passes equal plain forward passes, whatever the batch looks like."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from transformers import DynamicCache

from overshadow_lab.decoding import kv_cache, left_pad
from overshadow_lab.decoding.coda import _next_logprobs
from overshadow_lab.decoding.kv_cache import (
    _cache_for_generate,
    _cache_layers,
    _make_cache,
    _pass_cost,
    _Prefix,
    _split,
    _Stream,
    _StreamGroup,
)
from overshadow_lab.decoding.padding import positions
from tests.tiny import VOCAB, random_prompts

PROMPTS = random_prompts(5, seed=3)  # 5 prompts of different lengths
ATOL = 1e-5


def _model(arch, llama, neox):
    return llama if arch == "llama" else neox


def _alone(model, seqs):
    """Each sequence's next-token log-probabilities from its own plain, uncached pass."""
    return torch.stack([_next_logprobs(model, s) for s in seqs])


def _tails(n, seed):
    """``n`` continuations of 1 to 4 random tokens."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, 5, (n,), generator=g).tolist()
    return [torch.randint(1, VOCAB, (k,), generator=g).tolist() for k in lengths]


# ---- streams and prefixes: cached equals plain ---------------------------------------------------
@pytest.mark.parametrize("arch", ["llama", "neox"])
def test_a_ragged_stream_and_its_steps_equal_each_sequence_alone(arch, llama, neox):
    model = _model(arch, llama, neox)
    stream = _Stream(model, PROMPTS, pad_token_id=0, hidden_states=True)
    assert torch.allclose(stream.logp, _alone(model, PROMPTS), atol=ATOL)
    with torch.no_grad():  # the DoLa path reads the last position's hidden states
        full = model(torch.tensor([PROMPTS[2]]), output_hidden_states=True).hidden_states
    for layer, h in enumerate(full):
        assert torch.allclose(stream.last_hidden[layer][2], h[0, -1], atol=ATOL)
    seqs = [list(p) for p in PROMPTS]
    for t in ([5, 6, 7, 8, 9], [1, 1, 2, 3, 47]):
        stream.step(torch.tensor(t))
        seqs = [s + [x] for s, x in zip(seqs, t, strict=True)]
        assert torch.allclose(stream.logp, _alone(model, seqs), atol=ATOL)


@pytest.mark.parametrize("arch", ["llama", "neox"])
def test_cached_prefix_and_continuation_equal_a_full_forward(arch, llama, neox):
    """Rows continue prompt ``owners[i]`` after its first ``starts[i]`` tokens (0: nothing
    shared), prompts and continuations of different lengths in one batch."""
    model = _model(arch, llama, neox)
    prefix = _Prefix.compute(model, PROMPTS, pad_token_id=0)
    assert prefix is not None
    owners = [0, 1, 1, 2, 3, 4, 4, 0]
    starts = [1, 0, len(PROMPTS[1]) - 1, 2, len(PROMPTS[3]), 3, 1, len(PROMPTS[0])]
    tails = _tails(len(owners), seed=4)
    shared = prefix.take(owners, starts)
    stream = _Stream(model, tails, pad_token_id=0, prefix=shared)
    seqs = [PROMPTS[b][:a] + t for b, a, t in zip(owners, starts, tails, strict=True)]
    assert torch.allclose(stream.logp, _alone(model, seqs), atol=ATOL)
    tokens = list(range(3, 3 + len(owners)))
    stream.step(torch.tensor(tokens))
    seqs = [s + [t] for s, t in zip(seqs, tokens, strict=True)]
    assert torch.allclose(stream.logp, _alone(model, seqs), atol=ATOL)
    assert prefix.take(owners, [0] * len(owners)) is None  # nothing to share


@pytest.mark.parametrize("arch", ["llama", "neox"])
def test_a_one_pass_cache_gives_the_plain_caches_numbers(arch, llama, neox):
    """A detection pass's cache (room for the pass's own tokens, written in place) gives exactly
    the log-probabilities of the plain cache, and grows like one when given too little room."""
    model = _model(arch, llama, neox)
    prefix = _Prefix.compute(model, PROMPTS, pad_token_id=0)
    owners, starts = [0, 1, 2, 3, 4, 4], [1, 2, 3, 2, 3, 1]
    tails = _tails(len(owners), seed=6)
    width = max(len(t) for t in tails)
    plain = _Stream(model, tails, 0, keep_cache=False, prefix=prefix.take(owners, starts)).logp
    for room in (width, width + 3, 1):
        shared = prefix.take(owners, starts, room=room)
        if kv_cache.DynamicLayer is not None:
            assert all(type(layer).__name__ == "_OnePassLayer" for layer in shared[0].layers)
        one_pass = _Stream(model, tails, 0, keep_cache=False, prefix=shared)
        assert torch.equal(one_pass.logp, plain), room
        assert one_pass.cache is None  # dropped after its pass


@pytest.mark.parametrize("arch", ["llama", "neox"])
def test_generates_cache_is_the_prompts_prefix(arch, llama, neox):
    """The cache handed to generate, once it holds the left-padded prompts, serves the same
    prefixes as a pass of the prompts' own; a cache of other tokens is refused."""
    model = _model(arch, llama, neox)
    argument, cache = _cache_for_generate(model, {})
    assert isinstance(cache, DynamicCache)
    ids, mask = left_pad(PROMPTS, 0)
    with torch.no_grad():
        model(ids, attention_mask=mask, position_ids=positions(mask), **{argument: cache})
    handed = _Prefix.from_cache(cache, PROMPTS, ids)
    own = _Prefix.compute(model, PROMPTS, pad_token_id=0)
    owners, starts = [0, 2, 4], [2, 3, 1]
    (a, mask_a), (b, mask_b) = handed.take(owners, starts), own.take(owners, starts)
    assert torch.equal(mask_a, mask_b)
    valid = mask_a.bool()[:, None, :, None]  # (rows, heads, length, head_dim)
    for (ka, va), (kb, vb) in zip(_cache_layers(a), _cache_layers(b), strict=True):
        assert torch.allclose(ka * valid, kb * valid, atol=ATOL)
        assert torch.allclose(va * valid, vb * valid, atol=ATOL)
    assert _Prefix.from_cache(cache, PROMPTS[::-1], ids) is None  # other prompts
    assert _Prefix.from_cache(cache, PROMPTS, ids[:, 1:]) is None  # other width


def test_generate_keeps_its_own_cache_where_asked(llama):
    assert _cache_for_generate(llama, {"use_cache": False}) is None
    assert _cache_for_generate(llama, {"cache_implementation": "static"}) is None
    argument, _ = _cache_for_generate(llama, {})
    assert _cache_for_generate(llama, {argument: DynamicCache()}) is None


def test_cache_layers_reads_plain_keys_and_values_only():
    g = torch.Generator().manual_seed(0)
    pairs = [(torch.randn(2, 4, 3, 8, generator=g), torch.randn(2, 4, 3, 8, generator=g))] * 2
    read = _cache_layers(_make_cache(pairs))
    assert len(read) == 2 and all(
        torch.equal(k, k0) and torch.equal(v, v0)
        for (k, v), (k0, v0) in zip(read, pairs, strict=True)
    )
    assert len(_cache_layers(tuple(pairs))) == 2  # the legacy tuple format

    class SlidingWindowLayer:  # any layer class but DynamicLayer: cannot be cut into prefixes
        keys, values = pairs[0]

    class Cache:
        layers = [SlidingWindowLayer()]

    assert _cache_layers(Cache()) is None
    assert _cache_layers(None) is None
    assert _cache_layers(((torch.zeros(2, 3), torch.zeros(2, 3)),)) is None  # not 4-D


# ---- a group of streams: order, chunks, prefixes ----------------------------------------------------
@pytest.mark.parametrize("chunk", [None, 1, 3])
@pytest.mark.parametrize("share", [False, True])
def test_stream_group_rows_are_each_sequence_alone(chunk, share, neox):
    owners = [0, 0, 1, 2, 2, 2, 3, 4, 4]
    starts = [0, 2, 1, 1, 2, 3, 0, 2, 3]
    tails = _tails(len(owners), seed=5)
    seqs = [PROMPTS[b][:a] + t for b, a, t in zip(owners, starts, tails, strict=True)]
    prefix = _Prefix.compute(neox, PROMPTS) if share else None
    group = _StreamGroup(neox, seqs, chunk, owners, prefix=prefix, starts=starts)
    if chunk is not None:
        assert all(b - a <= chunk for a, b in group.bounds)
    expected = _alone(neox, seqs)
    assert torch.allclose(group.rows(range(len(seqs))), expected, atol=ATOL)
    done = []  # runs() gives each prompt's rows in the group's row order
    for owner, rows in group.runs():
        ids = group.order[len(done) : len(done) + len(rows)]
        assert all(owners[i] == owner for i in ids)
        assert torch.allclose(rows, expected[ids], atol=ATOL)
        done += ids
    assert sorted(done) == list(range(len(seqs)))
    tokens = torch.arange(1, len(seqs) + 1)
    group.step(tokens)
    longer = [s + [int(t)] for s, t in zip(seqs, tokens, strict=True)]
    assert torch.allclose(group.rows(range(len(seqs))), _alone(neox, longer), atol=ATOL)


# ---- the split planner -----------------------------------------------------------------------------
def _cost(lengths, bounds, pass_cost):
    return sum(pass_cost + (b - a) * lengths[b - 1] for a, b in bounds)


def _cheapest(lengths, most, pass_cost):
    """The cheapest cut by brute force over every way of cutting the rows into chunks."""
    n, best = len(lengths), None
    for cuts in itertools.product([False, True], repeat=n - 1):
        ends = [j + 1 for j, cut in enumerate(cuts) if cut] + [n]
        bounds = list(zip([0, *ends[:-1]], ends, strict=True))
        if all(b - a <= most for a, b in bounds):
            cost = _cost(lengths, bounds, pass_cost)
            best = cost if best is None else min(best, cost)
    return best


def test_split_into_passes():
    lengths = [1, 1, 2, 2, 3, 20, 20, 21]
    bounds = _split(lengths, 3, pass_cost=4)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(lengths)
    assert all(a < b <= a + 3 for a, b in bounds)
    assert all(b1 == a2 for (_, b1), (a2, _) in zip(bounds, bounds[1:], strict=False))
    assert _split(lengths, None, pass_cost=10**6) == [(0, 8)]  # a costly pass: one pass
    assert _split(lengths, None, pass_cost=0) == [(0, 2), (2, 4), (4, 5), (5, 7), (7, 8)]


def test_a_16_bit_model_weighs_a_pass_as_more_tokens(llama):
    """A token costs less in 16 bits while a pass costs about as much: fewer, fuller passes."""
    from overshadow_lab.decoding.kv_cache import _PASS_COST_TOKENS, _PASS_COST_TOKENS_16BIT

    assert _PASS_COST_TOKENS_16BIT > _PASS_COST_TOKENS
    assert _pass_cost(llama) == _PASS_COST_TOKENS
    half = copy.deepcopy(llama).to(torch.bfloat16)
    assert _pass_cost(half) == _PASS_COST_TOKENS_16BIT
    assert _pass_cost(torch.nn.Linear(2, 2)) == _PASS_COST_TOKENS  # no embeddings: its weights


@pytest.mark.parametrize("seed", range(6))
def test_split_is_the_cheapest_cut(seed):
    g = torch.Generator().manual_seed(seed)
    lengths = sorted(torch.randint(1, 30, (9,), generator=g).tolist())
    for most, pass_cost in [(None, 0), (None, 16), (None, 64), (2, 8), (4, 30), (9, 5)]:
        bounds = _split(lengths, most, pass_cost)
        limit = most or len(lengths)
        assert all(b - a <= limit for a, b in bounds)
        assert _cost(lengths, bounds, pass_cost) == _cheapest(lengths, limit, pass_cost)
