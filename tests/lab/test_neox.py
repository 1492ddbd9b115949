"""The lean GPT-NeoX training forward computes what the transformers forward computes."""

import pytest
import torch

from overshadow_lab.lab import neox
from overshadow_lab.lab.models import make_model
from tests.tiny import tiny_llama


def _ids(batch, length, vocab=50, seed=0):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"use_parallel_residual": False},
        {"rotary_pct": 1.0},
        {"attention_bias": False},
        {"rotary_emb_base": 500},
    ],
    ids=["pythia-like", "sequential-residual", "full-rotary", "no-attention-bias", "rope-base"],
)
@pytest.mark.parametrize("length", [1, 5, 9])
def test_hidden_states_match_transformers(overrides, length):
    model = make_model("tiny", vocab_size=50, seed=1, **overrides)
    ids = _ids(3, length)
    with torch.no_grad():
        ours = neox.hidden_states(model, ids)
        theirs = model.base_model(input_ids=ids, use_cache=False).last_hidden_state
    assert ours.shape == theirs.shape == (3, length, model.config.hidden_size)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_gradients_match_transformers():
    a = make_model("tiny", vocab_size=50, seed=2).train()
    b = make_model("tiny", vocab_size=50, seed=2).train()
    ids = _ids(4, 7, seed=3)
    weights = torch.randn(4, 7, a.config.hidden_size, generator=torch.Generator().manual_seed(4))
    (neox.hidden_states(a, ids) * weights).sum().backward()
    (b.base_model(input_ids=ids, use_cache=False).last_hidden_state * weights).sum().backward()
    names = dict(b.named_parameters())
    checked = 0
    for name, p in a.named_parameters():
        q = names[name]
        if p.grad is None:  # the output layer is not part of the hidden states
            assert q.grad is None or not q.grad.any()
            continue
        scale = max(1.0, float(q.grad.abs().max()))  # embeddings' gradients reach hundreds
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6 * scale, msg=name)
        checked += 1
    assert checked == len(names) - 1  # every parameter but lm_head


def test_rotary_tables_follow_the_length_and_base():
    short = make_model("tiny", vocab_size=50, seed=0)
    other = make_model("tiny", vocab_size=50, seed=0, rotary_emb_base=100)
    ids = _ids(2, 12)
    with torch.no_grad():
        neox.hidden_states(short, ids[:, :4])  # caches the tables of length 4 first
        for m in (short, other):
            torch.testing.assert_close(
                neox.hidden_states(m, ids),
                m.base_model(input_ids=ids, use_cache=False).last_hidden_state,
                rtol=1e-5,
                atol=1e-5,
            )


def test_supported_only_where_it_is_exact():
    model = make_model("pico", vocab_size=50)
    assert neox.supported(model)
    assert not neox.supported(make_model("pico", vocab_size=50, hidden_act="gelu_new"))
    dropout = make_model("pico", vocab_size=50, hidden_dropout=0.1)
    assert neox.supported(dropout.eval()) and not neox.supported(dropout.train())
    llama = tiny_llama(50, layers=1, hidden=16, heads=2, kv_heads=None, pad_token_id=None)
    assert not neox.supported(llama)
    with pytest.raises(ValueError, match="use model.base_model instead"):
        neox.hidden_states(llama, _ids(1, 3))
