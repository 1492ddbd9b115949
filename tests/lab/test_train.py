"""Tests of overshadow_lab.lab.train: stopping rules, determinism, checkpoints, bad options."""

import math

import pytest
import torch

from overshadow_lab.lab import train as train_module
from overshadow_lab.lab.data import make_knowledge_sets
from overshadow_lab.lab.models import make_model
from overshadow_lab.lab.train import (
    LinearCrossEntropy,
    TrainConfig,
    fusable,
    lm_loss,
    progress_enabled,
    train_model,
)
from overshadow_lab.metrics import evaluate
from tests.tiny import tiny_llama


@pytest.fixture(scope="module")
def sets():
    return make_knowledge_sets(P=3, L=3, n_sets=20, vocab=100, seed=0)


def _train(sets, **kw):
    model = make_model("nano", sets.vocab_size, seed=0)
    return train_model(model, sets, progress=False, **kw)


def test_epochs_rule_runs_exact_steps(sets):
    r = _train(sets, rule="epochs", epochs=3, batch_size=16, eval_every=5)
    per_epoch = math.ceil(len(sets.train_sequences) / 16)
    assert r.steps == 3 * per_epoch
    assert r.tokens == 3 * sum(len(s) for s in sets.train_sequences)
    assert r.stop_reason == "epochs" and r.history["step"].iloc[-1] == r.steps
    assert r.seconds > 0


def test_converge_rule_stops_when_dominant_recalled(sets):
    r = _train(sets, rule="converge", lr=1e-2, batch_size=32, eval_every=10, max_steps=600)
    assert r.converged and r.stop_reason == "rr_threshold"
    assert r.history["RR"].iloc[-1] >= 0.95 and r.steps < 600 and r.steps % 10 == 0
    assert evaluate(r.model, sets, n_boot=0)["RR"] >= 0.95
    # min_steps postpones the stop
    r2 = _train(
        sets, rule="converge", lr=1e-2, batch_size=32, eval_every=10, min_steps=r.steps + 50
    )
    assert r2.steps >= r.steps + 50


def test_plateau_and_cap(sets):
    r = _train(
        sets, rule="converge", lr=1e-9, batch_size=128, eval_every=2, patience=3, max_steps=500
    )
    assert r.stop_reason == "plateau" and not r.converged and r.steps == 2 * 4
    r = _train(
        sets, rule="converge", lr=1e-9, batch_size=128, eval_every=2, patience=100, max_steps=6
    )
    assert r.stop_reason == "max_steps" and r.steps == 6


def test_training_lowers_the_full_sequence_loss(sets):
    model = make_model("nano", sets.vocab_size, seed=0)
    batch = torch.tensor(sets.train_sequences)
    with torch.no_grad():
        before = float(lm_loss(model, batch))
    train_model(model, sets, rule="epochs", epochs=5, lr=1e-2, progress=False)
    with torch.no_grad():
        assert float(lm_loss(model, batch)) < before - 0.5


@pytest.mark.parametrize("bias", [False, True])
def test_linear_cross_entropy_equals_autograd(bias):
    g = torch.Generator().manual_seed(0)
    h = torch.randn(12, 8, generator=g, requires_grad=True)
    w = torch.randn(30, 8, generator=g, requires_grad=True)
    b = torch.randn(30, generator=g, requires_grad=True) if bias else None
    target = torch.randint(0, 30, (12,), generator=g)
    target[[2, 7]] = -100  # ignored positions count for nothing
    ours = LinearCrossEntropy.apply(h, w, b, target)
    (3.0 * ours).backward()
    grads = [t.grad.clone() for t in (h, w, b) if t is not None]
    for t in (h, w, b):
        if t is not None:
            t.grad = None
    ref = torch.nn.functional.cross_entropy(torch.nn.functional.linear(h, w, b), target)
    (3.0 * ref).backward()
    torch.testing.assert_close(ours, ref)
    assert grads[0][[2, 7]].abs().max() == 0  # an ignored row gets no gradient
    for mine, t in zip(grads, (x for x in (h, w, b) if x is not None), strict=True):
        torch.testing.assert_close(mine, t.grad, rtol=1e-5, atol=1e-6)


def test_linear_cross_entropy_refuses_a_second_backward():
    h = torch.randn(4, 3, requires_grad=True)
    loss = LinearCrossEntropy.apply(h, torch.randn(5, 3), None, torch.tensor([0, 1, 2, 3]))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="differentiated once"):
        loss.backward()


def _llama():
    """LlamaConfig's own defaults (one key-value head per head, init 0.02), tied embeddings."""
    model = tiny_llama(
        100,
        0,
        kv_heads=None,
        initializer_range=0.02,
        tie_word_embeddings=True,
        pad_token_id=None,
        bos_token_id=1,
        eos_token_id=2,
    )
    return model.train()


@pytest.mark.parametrize("arch", ["gpt_neox", "llama-tied"])
def test_fast_loss_equals_the_models_own_loss(sets, arch):
    """The fast route (lean forward where it applies, fused output layer and loss) gives the
    loss and every gradient of ``model(...)`` + ``F.cross_entropy``, tied embeddings included."""
    import copy

    a = make_model("tiny", sets.vocab_size, seed=1) if arch == "gpt_neox" else _llama()
    b = copy.deepcopy(a)
    assert fusable(a)
    batch = torch.tensor(sets.train_sequences[:24])
    fast, plain = lm_loss(a.train(), batch), lm_loss(b.train(), batch, fast=False)
    fast.backward()
    plain.backward()
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-6)
    names = dict(b.named_parameters())
    for name, p in a.named_parameters():
        scale = max(1.0, float(names[name].grad.abs().max()))
        torch.testing.assert_close(p.grad, names[name].grad, rtol=1e-4, atol=1e-6 * scale)


def test_fast_route_is_skipped_under_autocast(sets, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("the fused loss ran under autocast")

    monkeypatch.setattr(LinearCrossEntropy, "apply", boom)
    model = make_model("nano", sets.vocab_size, seed=0)
    batch = torch.tensor(sets.train_sequences[:8])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(lm_loss(model, batch))
    with pytest.raises(AssertionError, match="fused loss ran"):
        lm_loss(model, batch)


def test_fast_and_plain_training_agree(sets):
    fast = _train(sets, rule="epochs", epochs=2, eval_every=3, seed=2)
    plain = _train(sets, rule="epochs", epochs=2, eval_every=3, seed=2, fast=False)
    assert fast.steps == plain.steps
    for x, y in zip(fast.history["loss"], plain.history["loss"], strict=True):
        assert x == pytest.approx(y, rel=1e-4)


def test_deterministic_on_cpu(sets):
    a = _train(sets, rule="epochs", epochs=2, eval_every=3, seed=4)
    b = _train(sets, rule="epochs", epochs=2, eval_every=3, seed=4)
    c = _train(sets, rule="epochs", epochs=2, eval_every=3, seed=5)
    assert a.history["loss"].tolist() == b.history["loss"].tolist() != c.history["loss"].tolist()
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("clip", [1.0, 1e-3, None], ids=["clip-1", "clip-always", "no-clip"])
def test_flat_parameters_train_as_one_tensor_each(sets, monkeypatch, clip):
    # the one-buffer bookkeeping (zeroing, clipping, AdamW on two tensors) against
    # make_optimizer + clip_grad_norm_ on every parameter: the same run up to float rounding
    model = make_model("nano", sets.vocab_size).train()
    assert train_module._FlatParameters.usable(model, TrainConfig(), torch.device("cpu"), False)
    kw = dict(rule="epochs", epochs=2, eval_every=3, seed=6, grad_clip=clip, weight_decay=0.1)
    flat = _train(sets, **kw)
    monkeypatch.setattr(train_module._FlatParameters, "usable", staticmethod(lambda *a: False))
    plain = _train(sets, **kw)
    assert flat.steps == plain.steps
    for x, y in zip(flat.history["loss"], plain.history["loss"], strict=True):
        assert x == pytest.approx(y, rel=1e-5)
    storages = set()
    for (name, p), q in zip(flat.model.named_parameters(), plain.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=name)
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-3, atol=1e-5, msg=name)
        storages.add(p.untyped_storage().data_ptr())
    assert len(storages) == len(list(flat.model.parameters()))  # own storage again after training


def test_flat_parameters_only_for_the_lean_cpu_route(sets):
    usable = train_module._FlatParameters.usable
    cpu, cfg = torch.device("cpu"), TrainConfig()
    nano = make_model("nano", sets.vocab_size).train()
    assert not usable(nano, TrainConfig(fast=False), cpu, False)
    assert not usable(nano, cfg, cpu, True)  # bf16 autocast: the model's own forward
    assert not usable(tiny_llama(sets.vocab_size), cfg, cpu, False)  # not the lean forward
    assert not usable(make_model("nano", sets.vocab_size).double().train(), cfg, cpu, False)


def test_checkpoint_is_safetensors(sets, tmp_path):
    _train(sets, rule="epochs", epochs=1, checkpoint_dir=str(tmp_path / "ck"))
    assert (tmp_path / "ck" / "model.safetensors").is_file()


def test_progress_env(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert not progress_enabled(True)
    monkeypatch.setenv("TQDM_DISABLE", "")
    assert progress_enabled(True) and not progress_enabled(False)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"rule": "forever"}, r"rule must be one of converge, epochs"),
        ({"batch_size": 0}, r"batch_size must be a whole number >= 1"),
        ({"epochs": 2.5}, r"epochs must be a whole number"),
        ({"rr_threshold": 95}, r"rr_threshold is a recall fraction in \(0, 1\]"),
        ({"warmup": 5}, r"warmup is a fraction"),
        ({"learning_rate": 1e-3}, r"unknown training option.*TrainConfig takes"),
    ],
)
def test_bad_options(sets, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        train_model(make_model("nano", sets.vocab_size), sets, **kwargs)


def test_config_object(sets):
    cfg = TrainConfig(rule="epochs", epochs=1, progress=False)
    r = train_model(make_model("nano", sets.vocab_size), sets, cfg, batch_size=64)
    assert r.config.batch_size == 64 and r.steps == math.ceil(len(sets.train_sequences) / 64)
