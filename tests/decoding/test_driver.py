"""The batch driver: greedy CoDA's fused loop (one forward pass per step for X and X') gives the
tokens and detections of ``model.generate`` with the logits processor, and the stop rules."""

from __future__ import annotations

import pytest
import torch

from overshadow_lab.decoding import CoDAConfig, CoDALogitsProcessor, generate
from overshadow_lab.decoding.kv_cache import _Stream
from tests.tiny import random_prompts, tiny_lm

PROMPTS = random_prompts(n=6, seed=3)
FORCED = CoDAConfig(threshold=-float("inf"))  # every prompt with a candidate is contrasted


def _both(model, cfg, n=7, **kw):
    fused = generate(model, PROMPTS, "coda", n, coda=cfg, batch_size=4, fused=True, **kw)
    plain = generate(model, PROMPTS, "coda", n, coda=cfg, batch_size=4, fused=False, **kw)
    return fused, plain


@pytest.mark.parametrize("cfg", [CoDAConfig(), FORCED, CoDAConfig(mask="replace", mask_token_id=0)])
@pytest.mark.parametrize("arch", ["llama", "neox"])
def test_fused_loop_equals_generate_with_the_processor(cfg, arch, llama, neox):
    model = llama if arch == "llama" else neox
    fused, plain = _both(model, cfg)
    assert fused.outputs == plain.outputs
    assert [d.alarm for d in fused.detections] == [d.alarm for d in plain.detections]
    assert [d.span for d in fused.detections] == [d.span for d in plain.detections]


def test_the_fused_test_is_not_vacuous(llama):
    """The forced contrast changes tokens after the second step, where the two paths differ."""
    fused, _ = _both(llama, FORCED)
    greedy = generate(llama, PROMPTS, "greedy", 7)
    assert any(f[2:] != g[2:] for f, g in zip(fused.outputs, greedy.outputs, strict=True))
    assert sum(d.alarm for d in fused.detections) >= 2


def test_fused_loop_stops_like_generate(llama):
    """End of sequence (dropped), min_new_tokens (no end before it) and the stop pattern."""
    eos = generate(llama, PROMPTS, "coda", 3, coda=FORCED).outputs[0][1]
    for kw in ({"eos_token_id": eos}, {"eos_token_id": eos, "min_new_tokens": 3}):
        fused, plain = _both(llama, FORCED, n=8, **kw)
        assert fused.outputs == plain.outputs
        assert all(eos not in o for o in fused.outputs[:1])
    model, tok = tiny_lm("a b c d . e f , g h".split())
    prompts = [tok(t, add_special_tokens=False)["input_ids"] for t in ("a b c", "e f g h", "d")]
    runs = [
        generate(
            model, prompts, "coda", 6, coda=FORCED, tokenizer=tok, fused=f, stop_pattern=r"\n|[.,]"
        )
        for f in (True, False)
    ]

    def cut(outs):  # each output up to its first stop token
        stops = [[tok.decode([t]).strip() in ".," for t in o] for o in outs]
        return [
            o[: s.index(True) + 1] if True in s else o for o, s in zip(outs, stops, strict=True)
        ]

    assert cut(runs[0].outputs) == cut(runs[1].outputs)
    assert runs[0].outputs == cut(runs[0].outputs)  # the fused loop stops at the stop token


def test_fused_only_where_it_applies(llama):
    with pytest.raises(ValueError, match="every_step"):
        generate(llama, PROMPTS, "coda", 3, coda=CoDAConfig(detect="every_step"), fused=True)
    with pytest.raises(ValueError, match="sampling"):
        generate(llama, PROMPTS, "coda", 3, do_sample=True, fused=True)
    # the automatic choice falls back to generate where fusing does not apply
    res = generate(llama, PROMPTS, "coda", 3, coda=CoDAConfig(detect="every_step"))
    assert len(res.outputs) == len(PROMPTS)


@pytest.mark.parametrize("arch", ["llama", "neox"])
def test_merged_streams_step_like_each_stream(arch, llama, neox):
    model = llama if arch == "llama" else neox
    a, b = _Stream(model, PROMPTS[:3]), _Stream(model, [p + [5, 6] for p in PROMPTS[3:]])
    a2, b2 = _Stream(model, PROMPTS[:3]), _Stream(model, [p + [5, 6] for p in PROMPTS[3:]])
    joint = _Stream.merged(a, b)
    assert torch.allclose(joint.logp, torch.cat([a.logp, b.logp]))
    for t in ([1, 2, 3, 4, 5, 6], [7, 7, 8, 8, 9, 9]):
        tokens = torch.tensor(t)
        joint.step(tokens)
        want = torch.cat([a2.step(tokens[:3]), b2.step(tokens[3:])])
        assert torch.allclose(joint.logp, want, atol=1e-5)


def test_a_released_processor_refuses_to_be_called(llama):
    proc = CoDALogitsProcessor(llama, PROMPTS, FORCED)
    ids = torch.nn.utils.rnn.pad_sequence(
        [torch.tensor(p).flip(0) for p in PROMPTS], batch_first=True
    ).flip(1)
    scores = torch.randn(len(PROMPTS), llama.config.vocab_size)
    with pytest.raises(RuntimeError, match="right after call 2"):
        proc.release_masked_stream()
    proc(ids, scores)
    proc(ids[:, -1:], scores)
    rows, stream = proc.release_masked_stream()
    assert rows and stream is not None and stream.logp.shape[0] == len(rows)
    with pytest.raises(RuntimeError, match="contrast_with"):
        proc(ids[:, -1:], scores)
