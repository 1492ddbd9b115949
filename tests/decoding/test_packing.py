"""Packed detection: variants laid end to end under a 4-D mask equal each variant alone."""

from __future__ import annotations

import copy
import itertools
from types import SimpleNamespace

import pytest
import torch

from overshadow_lab.decoding import CoDAConfig, generate, left_pad, packing
from overshadow_lab.decoding.kv_cache import _Prefix
from overshadow_lab.decoding.packing import (
    _PackedGroup,
    _passes,
    _rows,
    can_pack,
    worth_packing,
)
from overshadow_lab.decoding.processors import CoDALogitsProcessor
from tests.decoding.test_kv_cache import ATOL, PROMPTS, _alone, _tails

OWNERS = [0, 0, 1, 2, 2, 2, 3, 4, 4]
STARTS = [0, 2, 1, 1, 2, 3, 0, 2, 3]  # 0: the variant sees none of its prompt's cache


def _with_attention(model, impl):
    out = copy.deepcopy(model)
    out.config._attn_implementation = impl
    return out


@pytest.fixture(scope="module", params=["llama-sdpa", "llama-eager", "neox-sdpa", "neox-eager"])
def model(request, llama, neox):
    arch, impl = request.param.split("-")
    return _with_attention(llama if arch == "llama" else neox, impl)


@pytest.mark.parametrize("capacity", [1, 4, 9, 200])
@pytest.mark.parametrize("pass_tokens", [10_000, 7, 1])
def test_packed_rows_are_each_sequence_alone(model, capacity, pass_tokens):
    """Whatever the packing (one variant a row, several, all in one row; one pass or several),
    each variant's log-probabilities are those of its whole sequence fed alone."""
    tails = _tails(len(OWNERS), seed=5)
    seqs = [PROMPTS[b][:a] + t for b, a, t in zip(OWNERS, STARTS, tails, strict=True)]
    prefix = _Prefix.compute(model, PROMPTS)
    group = _PackedGroup(
        model,
        tails,
        OWNERS,
        STARTS,
        prefix,
        capacity=capacity,
        pass_tokens=pass_tokens,
    )
    expected = _alone(model, seqs)
    assert torch.allclose(group.rows(range(len(seqs))), expected, atol=ATOL)
    assert group.position.tolist() == list(range(len(seqs)))
    done = 0
    for owner, rows in group.runs():  # each prompt's variants, once, in order
        n = OWNERS.count(owner)
        assert OWNERS[done : done + n] == [owner] * n
        assert torch.allclose(rows, expected[done : done + n], atol=ATOL)
        done += n
    assert done == len(seqs)
    assert not model.get_output_embeddings()._forward_pre_hooks  # the picking hook is gone


def _fed(rows, lengths):
    """Tokens a pass feeds for these rows: each row padded to the longest."""
    return len(rows) * max(sum(lengths[i] for i in row) for row in rows)


def test_rows_keep_order_and_pad_the_least():
    lengths = [3, 4, 2, 9, 1, 1, 5]
    rows = _rows(lengths, 6)
    # the 9 makes every row of the pass 9 wide, so 3 + 4 + 2 fit one: 27 tokens, not 5 rows of 9
    assert rows == [[0, 1, 2], [3], [4, 5, 6]]
    assert _rows(lengths, 100) == [list(range(len(lengths)))]
    # filling rows of 12 leaves a last row of 2 padded to 10; rows of one 5 each pad only the 2
    assert _fed(_rows([5, 5, 5, 5, 5, 5, 2], 12), [5] * 7) == 35
    assert _rows([], 8) == []


def test_passes_hold_at_most_so_many_tokens():
    lengths = [3, 4, 2, 9, 1, 1, 5]
    assert _passes(lengths, 100) == [range(7)]
    # 3 + 4 fit 8 tokens, 2 + 9 do not, 9 alone is over and gets a pass of its own
    assert _passes(lengths, 8) == [range(0, 2), range(2, 3), range(3, 4), range(4, 7)]
    assert _passes(lengths, 1) == [range(i, i + 1) for i in range(7)]
    assert _passes([], 8) == []


@pytest.mark.parametrize("seed", range(20))
def test_rows_feed_the_fewest_tokens_of_any_ordered_cut(seed):
    """Against every way to cut the sequences, in order, into rows within the capacity."""
    gen = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 9, (1,), generator=gen))
    lengths = torch.randint(1, 12, (n,), generator=gen).tolist()
    capacity = int(torch.randint(1, 25, (1,), generator=gen))
    rows = _rows(lengths, capacity)
    assert [i for row in rows for i in row] == list(range(n))
    room = max(capacity, *lengths)
    assert all(sum(lengths[i] for i in row) <= room for row in rows)
    best = None
    for cuts in itertools.product([False, True], repeat=n - 1):
        parts, row = [], [0]
        for i, cut in enumerate(cuts, start=1):
            if cut:
                parts.append(row)
                row = []
            row.append(i)
        parts.append(row)
        if all(sum(lengths[i] for i in p) <= room for p in parts):
            fed = _fed(parts, lengths)
            best = fed if best is None else min(best, fed)
    assert _fed(rows, lengths) == best


def test_packing_needs_a_known_mask_convention(llama):
    assert can_pack(llama)
    assert can_pack(_with_attention(llama, "eager"))
    flash = SimpleNamespace(
        config=SimpleNamespace(_attn_implementation="flash_attention_2"),
        get_output_embeddings=lambda: llama.get_output_embeddings(),
    )
    assert not can_pack(flash)


def test_bad_inputs_fail_before_any_pass(llama):
    prefix = _Prefix.compute(llama, PROMPTS)
    with pytest.raises(ValueError, match="one owner and one start"):
        _PackedGroup(llama, [[1], [2]], [0], [0, 0], prefix)
    with pytest.raises(ValueError, match="at least one token"):
        _PackedGroup(llama, [[1], []], [0, 1], [0, 0], prefix)


@pytest.mark.parametrize("arch", ["llama", "neox"])
def test_packed_detection_decodes_like_one_row_per_variant(arch, llama, neox):
    """CoDA with packed detection (the default) and with one padded row per variant: the same
    detections and tokens, prompts of different lengths in one batch."""
    model = llama if arch == "llama" else neox
    prompts = [*PROMPTS, list(range(1, 20))]
    for per_pass in (None, 5):
        packed = CoDAConfig(variant_batch_size=per_pass)
        a = generate(model, prompts, "coda", 5, coda=packed, batch_size=len(prompts))
        b = generate(
            model,
            prompts,
            "coda",
            5,
            coda=CoDAConfig(variant_batch_size=per_pass, pack_variants=False),
            batch_size=len(prompts),
        )
        assert a.outputs == b.outputs
        for da, db in zip(a.detections, b.detections, strict=True):
            assert (da.span, da.alarm) == (db.span, db.alarm)
            assert da.indicators == pytest.approx(db.indicators, rel=1e-4, abs=1e-4)


def test_only_batches_of_short_prompts_are_packed(llama, monkeypatch):
    short, long = [1, 2, 3], list(range(1, 10))
    monkeypatch.setattr(packing, "PACK_MAX_PROMPT", 5)
    assert worth_packing([short, short]) and not worth_packing([short, long])
    for prompts, packed in (([short, [4, 5]], True), ([short, long], False)):
        proc = CoDALogitsProcessor(llama, prompts)
        ids, _ = left_pad(prompts, 0, "cpu")
        proc(ids, llama(ids).logits[:, -1])  # call 1: detection
        assert proc._packs() is packed
        assert [d.span is not None for d in proc.detections] == [True, True]


def test_a_pass_rows_are_as_long_as_its_longest_variant(llama):
    """Rows shorter than a pass's longest variant would only add padding: the capacity grows."""
    prefix = _Prefix.compute(llama, PROMPTS)
    tails = [[5] * 6, [6], [7], [8, 9]]
    shapes = []
    handle = llama.register_forward_pre_hook(lambda m, args: shapes.append(tuple(args[0].shape)))
    try:
        group = _PackedGroup(llama, tails, [0, 1, 2, 3], [1, 1, 1, 1], prefix, capacity=2)
    finally:
        handle.remove()
    assert shapes == [(2, 6)]  # [6 tokens] and [1 + 1 + 2], not three rows of 6
    seqs = [PROMPTS[b][:1] + t for b, t in enumerate(tails)]
    assert torch.allclose(group.logp, _alone(llama, seqs), atol=ATOL)
