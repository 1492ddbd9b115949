"""CoDA and the contrastive baselines: the fast processor equals the readable loop."""

from __future__ import annotations

import math

import pytest
import torch

from overshadow_lab.decoding import (
    CADLogitsProcessor,
    CoDAConfig,
    CoDALogitsProcessor,
    alarm_metrics,
    candidate_spans,
    coda_reference,
    coda_step,
    dola_layers,
    generate,
    left_pad,
    mask_span,
    plausible,
    with_options,
)
from overshadow_lab.decoding.coda import _amplified, _indicators
from overshadow_lab.decoding.kv_cache import _split
from overshadow_lab.decoding.packing import PACK_CAPACITY, PACK_PASS_TOKENS, _passes, _rows
from overshadow_lab.lab.models import make_model
from tests.tiny import VOCAB, random_prompts, tiny_llama

PROMPTS = random_prompts()


# ---- the arithmetic ----------------------------------------------------------------------------
def test_coda_step_matches_a_hand_computation():
    p = torch.tensor([0.6, 0.3, 0.1, 1e-6])
    pm = torch.tensor([0.9, 0.0005, 0.0995, 1e-6])
    st = coda_step(p.log(), pm.log(), alpha=0.01)
    # common = {0, 2}, S = {0}, V_esc = {1}
    assert st.rpmi_sum.item() == pytest.approx(math.log(0.6 / 0.9), rel=1e-5)
    assert st.erm.item() == pytest.approx(math.log(0.3 / 0.9), rel=1e-5)
    assert st.indicator.item() == pytest.approx(math.log(2 / 9), rel=1e-5)
    expected = torch.tensor(
        [math.log(0.6 / 0.9), math.log(0.3 / 0.9), math.log(0.1 / 0.0995), -math.inf]
    )
    assert torch.allclose(st.scores, expected)
    assert int(st.scores.argmax()) == 2


def test_coda_step_positive_indicator_and_empty_s():
    # masking the span makes token 0 much more likely and token 1 escape: overshadowed
    p = torch.tensor([0.4, 0.35, 0.245, 0.005]).log()
    pm = torch.tensor([0.8895, 0.001, 0.1, 0.0095]).log()
    st = coda_step(p, pm)
    # S = {0, 3}; min_S log p(.|X') = log 0.0095; V_esc = {1}
    erm = math.log(0.35 / 0.0095)
    assert st.erm.item() == pytest.approx(erm, rel=1e-5)
    assert st.indicator.item() == pytest.approx(
        math.log(0.4 / 0.8895) + math.log(0.005 / 0.0095) + erm, rel=1e-5
    )
    assert st.indicator.item() > 0 and int(st.scores.argmax()) == 1
    # S empty: "skip" gives -inf (no alarm), "common_min" uses min over V_top(X')
    same = coda_step(p, p)
    assert same.indicator.item() == -math.inf
    assert coda_step(p, p, empty_s="common_min").indicator.item() == 0.0


def test_plausible_head():
    lp = torch.tensor([0.5, 0.004, 0.006, 0.49]).log()
    assert plausible(lp, 0.01).tolist() == [True, False, True, True]


def test_alarm_metrics():
    m = alarm_metrics([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3) and m["accuracy"] == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match="same length"):
        alarm_metrics([1], [1, 0])


# ---- spans and masks -------------------------------------------------------------------------------
class _Tok:
    vocab = [" The", " Eiff", "el", " Tower", " is", " in", "\n", "Paris", ".", " 19", "89", "<s>"]
    all_special_ids = [11]

    def decode(self, ids):
        return "".join(self.vocab[i] for i in ids)


def test_candidate_spans_word_entity_token():
    ids = [11, 0, 1, 2, 3, 4, 5, 6, 7, 8, 5, 9, 10]
    tok = _Tok()
    words = candidate_spans(ids, "word", tok)
    assert [tok.decode(ids[s:e]).strip() for s, e in words] == [
        "The",
        "Eiffel",
        "Tower",
        "is",
        "in",
        "Paris",
        "in",
        "1989",
    ]
    ents = candidate_spans(ids, "entity", tok)
    assert [tok.decode(ids[s:e]).strip() for s, e in ents] == ["The Eiffel Tower", "Paris", "1989"]
    assert candidate_spans(ids, "token", tok)[0] == (1, 2)  # the special token is skipped
    assert candidate_spans(ids, "word", tok, max_candidates=2) == words[-2:]
    assert candidate_spans([5], "token") == []  # never delete the whole prompt
    with pytest.raises(ValueError, match="needs a tokenizer"):
        candidate_spans(ids, "word")


def test_mask_span():
    assert mask_span([1, 2, 3, 4], (1, 3)) == [1, 4]
    assert mask_span([1, 2, 3, 4], (1, 3), "replace", 0) == [1, 0, 0, 4]


def test_config_validation_names_the_fix():
    with pytest.raises(ValueError, match="mask_token_id"):
        CoDAConfig(mask="replace")
    with pytest.raises(ValueError, match="candidates"):
        CoDAConfig(candidates="phrase")
    with pytest.raises(ValueError, match="0.01"):
        CoDAConfig(alpha=0)


# ---- equivalence: processor == reference loop ---------------------------------------------------
CONFIGS = [
    CoDAConfig(),
    CoDAConfig(select="first"),
    CoDAConfig(detect="every_step"),
    CoDAConfig(detect="every_step", select="first", empty_s="common_min"),
    CoDAConfig(mask="replace", mask_token_id=0),
    CoDAConfig(max_candidates=3, variant_batch_size=2),
    # the ablation options (the paper's Table 6 and [A]'s escaping penalty)
    CoDAConfig(reduce="mean", exclude_final=1),
    CoDAConfig(reduce="weighted", escape="penalty", detect="every_step"),
]


@pytest.mark.parametrize(
    "cfg",
    CONFIGS,
    ids=lambda c: (
        f"{c.detect}-{c.select}-{c.mask}-{c.empty_s}-{c.reduce}-{c.escape}-{c.exclude_final}"
    ),
)
@pytest.mark.parametrize("arch", ["llama", "neox"])
def test_processor_equals_reference_loop(cfg, arch, llama, neox):
    model = llama if arch == "llama" else neox
    ref = [coda_reference(model, p, 6, cfg) for p in PROMPTS]
    fast = generate(model, PROMPTS, "coda", 6, coda=cfg, batch_size=8)
    assert fast.outputs == [r[0] for r in ref]
    assert [d.alarm for d in fast.detections] == [r[1].alarm for r in ref]
    assert [d.span for d in fast.detections] == [r[1].span for r in ref]
    for d, (_, rd) in zip(fast.detections, ref, strict=True):
        assert d.indicators == pytest.approx(rd.indicators, rel=1e-4, abs=1e-4)


def test_the_tests_are_not_vacuous(llama, neox):
    """Some prompts raise the alarm and some do not, and CoDA changes some outputs."""
    for model in (llama, neox):
        res = generate(model, PROMPTS, "coda", 6)
        alarms = [d.alarm for d in res.detections]
        assert 0 < sum(alarms) < len(alarms)
        assert res.outputs != generate(model, PROMPTS, "greedy", 6).outputs


@pytest.mark.parametrize("cfg", [CoDAConfig(), CoDAConfig(detect="every_step")])
def test_contrast_off_equals_greedy(cfg, llama):
    off = generate(llama, PROMPTS, "coda", 7, coda=with_options(cfg, amplify=False))
    assert off.outputs == generate(llama, PROMPTS, "greedy", 7).outputs
    assert any(d.alarm for d in off.detections)  # the alarm still runs


def test_batch_equals_one_by_one(neox):
    cfg = CoDAConfig(detect="every_step")
    batched = generate(neox, PROMPTS, "coda", 6, coda=cfg, batch_size=len(PROMPTS))
    single = [generate(neox, [p], "coda", 6, coda=cfg).outputs[0] for p in PROMPTS]
    assert batched.outputs == single


def test_a_prompt_without_candidates_keeps_its_place(llama):
    prompts = [PROMPTS[0], [7], PROMPTS[1]]  # a one-token prompt has nothing to mask
    fast = generate(llama, prompts, "coda", 4)
    ref = [coda_reference(llama, p, 4) for p in prompts]
    assert fast.outputs == [r[0] for r in ref]
    assert [d.span for d in fast.detections] == [r[1].span for r in ref]
    assert fast.detections[1].span is None and not fast.detections[1].alarm


def test_one_pass_per_variant_equals_batched(llama):
    a = generate(llama, PROMPTS, "coda", 5, coda=CoDAConfig(variant_batch_size=1))
    b = generate(llama, PROMPTS, "coda", 5)
    assert a.outputs == b.outputs


def test_given_spans_and_eos(llama):
    spans = [[(len(p) - 1, len(p))] for p in PROMPTS]
    fast = generate(llama, PROMPTS, "coda", 6, spans=spans, eos_token_id=5)
    for p, sp, out in zip(PROMPTS, spans, fast.outputs, strict=True):
        ref, det = coda_reference(llama, p, 6, spans=sp, eos_token_id=5)
        assert out == [t for t in ref if t != 5]
        assert det.spans == sp


def test_sampling_runs_and_is_seeded(llama):
    a = generate(llama, PROMPTS, "coda", 6, do_sample=True, seed=3)
    b = generate(llama, PROMPTS, "coda", 6, do_sample=True, seed=3)
    assert a.outputs == b.outputs and all(len(o) == 6 for o in a.outputs)
    off = generate(
        llama, PROMPTS, "coda", 6, coda=CoDAConfig(amplify=False), do_sample=True, seed=3
    )
    assert off.outputs == generate(llama, PROMPTS, "greedy", 6, do_sample=True, seed=3).outputs


def test_processor_rejects_a_different_batch(llama):
    proc = CoDALogitsProcessor(llama, PROMPTS[:2])
    with pytest.raises(ValueError, match="built for 2 prompts"):
        proc(torch.ones((3, 4), dtype=torch.long), torch.zeros((3, VOCAB)))


# ---- shared prefixes: the masked variants reuse the prompt's KV cache ------------------------------
def _multi_token_spans(prompts):
    """Explicit spans of 1 to 3 tokens at the start, middle and end of each prompt."""
    out = []
    for p in prompts:
        n = len(p)
        spans = [(0, 2), (n // 2, n // 2 + 3), (n - 2, n), (n - 1, n), (1, 2)]
        out.append([(s, min(e, n)) for s, e in spans if min(e, n) - s < n])
    return out


SHARE_CONFIGS = [
    CoDAConfig(variant_batch_size=3),
    CoDAConfig(variant_batch_size=3, pack_variants=False),
    CoDAConfig(variant_batch_size=None),
    CoDAConfig(mask="replace", mask_token_id=0, variant_batch_size=4),
    CoDAConfig(detect="every_step", variant_batch_size=5),
    CoDAConfig(detect="every_step", mask="replace", mask_token_id=0, empty_s="common_min"),
]


def _assert_same_coda(a, b):
    assert a.outputs == b.outputs
    assert [d.span for d in a.detections] == [d.span for d in b.detections]
    assert [d.alarm for d in a.detections] == [d.alarm for d in b.detections]
    for da, db in zip(a.detections, b.detections, strict=True):
        assert da.indicators == pytest.approx(db.indicators, rel=1e-4, abs=1e-4)


@pytest.mark.parametrize(
    "cfg",
    SHARE_CONFIGS,
    ids=lambda c: f"{c.detect}-{c.mask}-{c.empty_s}-vbs{c.variant_batch_size}",
)
@pytest.mark.parametrize("spans", ["token", "multi"])
@pytest.mark.parametrize("arch", ["llama", "neox"])
def test_shared_prefix_equals_full_passes(cfg, spans, arch, llama, neox):
    """Reusing the prompt's keys and values changes nothing: same detections, same tokens."""
    model = llama if arch == "llama" else neox
    sp = _multi_token_spans(PROMPTS) if spans == "multi" else None
    on = generate(model, PROMPTS, "coda", 6, coda=cfg, spans=sp, batch_size=8)
    off = generate(
        model,
        PROMPTS,
        "coda",
        6,
        coda=with_options(cfg, share_prefix=False),
        spans=sp,
        batch_size=8,
    )
    _assert_same_coda(on, off)
    assert any(math.isfinite(x) for d in on.detections for x in d.indicators)


class _CountTokens:
    """Counts the tokens a model is fed (input_ids of every forward call)."""

    def __init__(self, model):
        self.n = 0
        self.handle = model.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        ids = args[0] if args else kwargs.get("input_ids")
        self.n += ids.numel()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.remove()


def _fed(model, cfg, prompts):
    with _CountTokens(model) as count:
        generate(model, prompts, "coda", 1, coda=cfg, batch_size=len(prompts))
    return count.n


def test_shared_prefix_feeds_fewer_tokens_and_per_variant_stays_plain(neox):
    prompts = [list(range(1, 31)), list(range(5, 27))]  # 30 and 22 tokens: 52 token spans
    quiet = {"threshold": math.inf}  # no alarm: detection only, no stream for X' afterwards
    plain = 2 * 30 + 30 * 29 + 22 * 21  # generate's prompts, then every whole masked prompt
    per_variant = CoDAConfig(variant_batch_size=1, **quiet)
    assert _fed(neox, with_options(per_variant, share_prefix=False), prompts) == plain
    assert _fed(neox, per_variant, prompts) == plain  # 1 = one plain pass per variant
    full = _fed(neox, CoDAConfig(share_prefix=False, **quiet), prompts)
    assert full == 2 * 30 + 52 * 29  # one pass, padded to the longest variant
    shared = _fed(neox, CoDAConfig(pack_variants=False, **quiet), prompts)
    assert shared < 0.6 * full  # about half the tokens, and none for the prompts again
    # exactly: generate's prompts, then each variant from its span on (deleting the last token
    # leaves one token to feed), padded within the passes _split chooses
    tails = [max(1, t - 1 - a) for t in (30, 22) for a in range(t)]  # in the variants' order
    fed = sorted(tails)
    assert shared == 2 * 30 + sum((j - i) * fed[j - 1] for i, j in _split(fed, 64))
    # packed (the default): the same tokens end to end in rows of PACK_CAPACITY, padded only
    # up to the longest row of each pass of at most PACK_PASS_TOKENS tokens
    packed = _fed(neox, CoDAConfig(**quiet), prompts)
    padded_rows = 0
    for ids in _passes(tails, PACK_PASS_TOKENS):
        part = [tails[i] for i in ids]
        rows = _rows(part, PACK_CAPACITY)
        padded_rows += len(rows) * max(sum(part[i] for i in r) for r in rows)
    assert packed == 2 * 30 + padded_rows
    assert packed < shared


def test_shared_prefix_batches_prompts_of_different_lengths(llama):
    """A batch of prompts of different lengths equals each prompt alone, with shared prefixes."""
    cfg = CoDAConfig(variant_batch_size=4)
    prompts = PROMPTS + [list(range(1, 20))]
    batched = generate(llama, prompts, "coda", 5, coda=cfg, batch_size=len(prompts))
    single = [generate(llama, [p], "coda", 5, coda=cfg) for p in prompts]
    assert batched.outputs == [r.outputs[0] for r in single]
    for d, r in zip(batched.detections, single, strict=True):
        assert d.indicators == pytest.approx(r.detections[0].indicators, rel=1e-4, abs=1e-4)


def test_processor_alone_computes_the_prompt_cache_itself(llama):
    """Without generate's cache (plain model.generate) the processor runs the prompts itself."""
    ids, mask = left_pad(PROMPTS, 0, "cpu")
    proc = CoDALogitsProcessor(llama, PROMPTS)
    out = llama.generate(
        ids,
        attention_mask=mask,
        logits_processor=[proc],
        max_new_tokens=5,
        do_sample=False,
        pad_token_id=0,
    )
    ref = generate(llama, PROMPTS, "coda", 5, batch_size=len(PROMPTS))
    assert out[:, ids.shape[1] :].tolist() == ref.outputs
    assert [d.span for d in proc.detections] == [d.span for d in ref.detections]


def test_lab_model_shares_prefixes():
    model = make_model("tiny", vocab_size=VOCAB, seed=0).eval()
    on = generate(model, PROMPTS, "coda", 4, coda=CoDAConfig(variant_batch_size=3))
    off = generate(model, PROMPTS, "coda", 4, coda=CoDAConfig(share_prefix=False))
    _assert_same_coda(on, off)


@pytest.mark.parametrize("empty_s", ["skip", "common_min"])
@pytest.mark.parametrize("flat", [False, True])
def test_indicators_on_the_plausible_set_equal_coda_step(empty_s, flat):
    g = torch.Generator().manual_seed(0)
    scale = 0.01 if flat else 4.0  # flat: every token plausible, the whole-vocabulary branch
    logits = torch.randn(3, 200, generator=g) * scale
    logits[1, 7] = -math.inf  # a token banned by another processor
    logp = torch.log_softmax(logits, -1)
    noise = torch.randn(12, 200, generator=g)
    masked = torch.log_softmax(logits.repeat_interleave(4, 0) * 1.3 + noise, -1)
    masked[4] = logp[1]  # S empty: -inf for "skip"
    owner = torch.arange(3).repeat_interleave(4)
    expected = coda_step(logp[owner], masked, 0.01, empty_s).indicator
    blocks = [(0, masked[:4]), (1, masked[4:6]), (1, masked[6:8]), (2, masked[8:])]
    got = _indicators(logp, blocks, 0.01, empty_s)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-4)
    if empty_s == "skip":
        assert got[4].item() == -math.inf
    assert _indicators(logp, [(2, masked[:0]), (0, masked[:3])]).shape == (3,)


@pytest.mark.parametrize("empty_s", ["skip", "common_min"])
def test_amplified_scores_on_the_plausible_set_equal_coda_step(empty_s):
    g = torch.Generator().manual_seed(1)
    for scale in (0.01, 1.0, 4.0, 8.0):  # 0.01: flat, the whole-vocabulary branch
        logits = torch.randn(3, 300, generator=g) * scale
        logits[1, 7] = -math.inf
        logp = torch.log_softmax(logits, -1)
        noise = torch.randn(3, 300, generator=g)
        masked = torch.log_softmax(logits * 1.3 + noise, -1)
        masked[2] = logp[2]  # S empty
        expected = coda_step(logp, masked, 0.01, empty_s).scores
        assert torch.equal(_amplified(logp, masked, 0.01, empty_s), expected)


# ---- baselines -------------------------------------------------------------------------------------
def test_cad_alpha_zero_is_greedy_and_alpha_changes_it(llama):
    plain = [p[2:] if len(p) > 3 else p for p in PROMPTS]
    greedy = generate(llama, PROMPTS, "greedy", 5).outputs
    assert generate(llama, PROMPTS, "cad", 5, plain_prompts=plain, cad_alpha=0.0).outputs == greedy
    assert generate(llama, PROMPTS, "cad", 5, plain_prompts=plain, cad_alpha=2.0).outputs != greedy


def test_cad_matches_its_formula(llama):
    p, plain = PROMPTS[0], PROMPTS[0][2:]
    proc = CADLogitsProcessor(llama, [plain], alpha=0.7)
    with torch.no_grad():
        logits = llama(torch.tensor([p])).logits[:, -1]
        plain_lp = torch.log_softmax(llama(torch.tensor([plain])).logits[:, -1], -1)
    out = proc(torch.tensor([p]), logits)
    expected = 1.7 * torch.log_softmax(logits, -1) - 0.7 * plain_lp
    assert torch.allclose(out, expected, atol=1e-5)


def test_expert_amateur_and_dola(llama, neox):
    amateur = tiny_llama(seed=5)
    cd = generate(llama, PROMPTS, "cd", 4, amateur=amateur)
    assert all(len(o) == 4 and max(o) < VOCAB for o in cd.outputs)
    assert cd.outputs != generate(llama, PROMPTS, "greedy", 4).outputs
    dola = generate(neox, PROMPTS, "dola", 4, dola_premature_layers=[0, 2])
    assert all(len(o) == 4 for o in dola.outputs)
    assert dola_layers(32, "low") == list(range(0, 16, 2)) and dola_layers(32, "high")[0] == 16
    with pytest.raises(ValueError, match="needs amateur"):
        generate(llama, PROMPTS, "cd", 4)
    with pytest.raises(ValueError, match="unknown decoding method"):
        generate(llama, PROMPTS, "beam", 4)


def test_generate_names_dolas_renamed_keyword(llama):
    with pytest.raises(ValueError, match="dola_premature_layers"):
        generate(llama, PROMPTS, "dola", 4, dola_layers=[0, 2])
