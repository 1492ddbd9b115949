"""Training models stacked gives each member what training it alone gives (overshadow_lab.lab.stacked)."""

import os

import pytest
import torch

from overshadow_lab.lab import neox, stacked
from overshadow_lab.lab.data import make_knowledge_sets
from overshadow_lab.lab.models import make_model
from overshadow_lab.lab.prefixes import prefix_groups
from overshadow_lab.lab.stacked import (
    StackedLinearCrossEntropy,
    _Member,
    _Recall,
    plan_lanes,
    plan_stacks,
    stack_key,
    stackable,
    train_stacked,
)
from overshadow_lab.lab.train import LinearCrossEntropy, TrainConfig, train_model
from overshadow_lab.metrics import answer_matches
from tests.tiny import tiny_llama

VOCAB = 60


def _sets(P, L, seed):
    return make_knowledge_sets(P=P, L=L, n_sets=8, vocab=VOCAB, seed=seed)


def _alone(model, sets, config):
    """``train_model`` on one model: the reference the stack is checked against."""
    return train_model(model, sets, config)


def _params(model):
    return {n: p.detach() for n, p in model.named_parameters()}


def _assert_same_training(alone, stacked):
    """Same steps, tokens, stop, per-check losses and recall, and final weights."""
    assert (alone.steps, alone.tokens, alone.stop_reason, alone.converged) == (
        stacked.steps,
        stacked.tokens,
        stacked.stop_reason,
        stacked.converged,
    )
    cols = ["step", "epoch", "loss", "RR"]
    torch.testing.assert_close(
        torch.tensor(stacked.history[cols].to_numpy()),
        torch.tensor(alone.history[cols].to_numpy()),
        rtol=1e-5,
        atol=1e-6,
    )
    theirs = _params(alone.model)
    free = _free_key_bias(alone.model)
    for name, p in _params(stacked.model).items():
        q = theirs[name]
        if name.endswith("query_key_value.bias"):
            p, q = p[~free], q[~free]
        torch.testing.assert_close(p, q, rtol=0, atol=1e-5, msg=name)


def _free_key_bias(model):
    """The entries of the fused QKV bias that add the key bias outside the rotary dimensions.

    They add the same number to every score of a query, which the softmax ignores: their true
    gradient is zero, so what they get is float rounding, which Adam (dividing each gradient by
    its own size) turns into steps of up to the learning rate in either direction. Batched and
    single matrix products round differently, so these entries differ between the two ways of
    training, and nothing else does: they never change the model's output.
    """
    att = model.gpt_neox.layers[0].attention
    size, rot = att.head_size, att.rotary_ndims
    heads = model.config.hidden_size // size
    mask = torch.zeros(heads, 3, size, dtype=torch.bool)
    mask[:, 1, rot:] = True
    return mask.reshape(-1)


def test_members_train_as_they_would_alone():
    """Different data (P and L: different numbers and lengths of sequences), seeds, learning
    rates, weight decay, batch sizes and budgets in one stack; every loss is checked."""
    runs = [
        ({"P": 2, "L": 3, "seed": 0}, {"lr": 3e-3, "weight_decay": 0.0, "batch_size": 6}),
        ({"P": 5, "L": 3, "seed": 1}, {"lr": 1e-2, "weight_decay": 0.1, "batch_size": 10}),
        ({"P": 3, "L": 6, "seed": 2}, {"lr": 5e-3, "weight_decay": 0.01, "batch_size": 12}),
    ]
    sets = [_sets(**d) for d, _ in runs]
    configs = [
        TrainConfig(rule="epochs", epochs=2, eval_every=1, seed=d["seed"], progress=False, **t)
        for d, t in runs
    ]
    alone = [
        _alone(make_model("nano", VOCAB, seed=d["seed"]), s, c)
        for (d, _), s, c in zip(runs, sets, configs, strict=True)
    ]
    assert len({r.steps for r in alone}) == 3  # the members stop at different steps
    stacked = train_stacked(
        [make_model("nano", VOCAB, seed=d["seed"]) for d, _ in runs], sets, configs
    )
    for a, b in zip(alone, stacked, strict=True):
        _assert_same_training(a, b)
        assert b.seconds > 0 and b.config.seed == a.config.seed


def test_stopping_rules_and_members_leaving_the_stack():
    """The converge rule (recall threshold and plateau) stops members at different checks;
    the members left behind keep training exactly (their optimizer state moves along)."""
    sets = _sets(P=3, L=3, seed=0)
    configs = [
        TrainConfig(rule="converge", lr=1e-2, batch_size=16, eval_every=5, max_steps=40, seed=0),
        TrainConfig(rule="converge", lr=1e-9, eval_every=2, patience=2, max_steps=40, seed=1),
        TrainConfig(rule="converge", lr=1e-4, eval_every=5, patience=100, max_steps=12, seed=2),
    ]
    configs = [TrainConfig(**{**vars(c), "progress": False}) for c in configs]
    alone = [_alone(make_model("nano", VOCAB, seed=k), sets, c) for k, c in enumerate(configs)]
    reasons = [r.stop_reason for r in alone]
    assert reasons == ["rr_threshold", "plateau", "max_steps"], reasons
    assert len({r.steps for r in alone}) == 3
    stacked = train_stacked(
        [make_model("nano", VOCAB, seed=k) for k in range(3)], [sets] * 3, configs
    )
    for a, b in zip(alone, stacked, strict=True):
        _assert_same_training(a, b)


def test_every_rule_stops_where_train_model_stops():
    """The plateau and exposure rules, and a recall threshold reached at the very last step,
    end each member where train_model ends it, with the same reason, flag and exposure counts
    (before, a stacked member ran the plateau and exposure rules to max_steps, and one that
    reached the threshold at its last step was reported as stopped by max_steps)."""
    sets = _sets(P=3, L=3, seed=0)
    # no warm-up, so that the learning rates do not depend on max_steps
    quick = {"rule": "converge", "lr": 1e-2, "batch_size": 16, "eval_every": 5, "warmup": 0.0}
    quick["seed"] = 0
    probe = _alone(
        make_model("nano", VOCAB, seed=0),
        sets,
        TrainConfig(**quick, max_steps=400, progress=False),
    )
    assert probe.stop_reason == "rr_threshold"
    configs = [
        TrainConfig(rule="plateau", lr=1e-9, eval_every=2, patience=2, max_steps=40, seed=1),
        TrainConfig(rule="exposure", exposures=3, eval_every=4, batch_size=8, seed=2),
        TrainConfig(**quick, max_steps=probe.steps),  # the threshold falls on the last step
    ]
    configs = [TrainConfig(**{**vars(c), "progress": False}) for c in configs]
    seeds = [c.seed for c in configs]
    alone = [
        _alone(make_model("nano", VOCAB, seed=k), sets, c)
        for k, c in zip(seeds, configs, strict=True)
    ]
    assert [r.stop_reason for r in alone] == ["plateau", "exposures", "rr_threshold"]
    assert all(r.converged for r in alone)
    assert alone[0].steps < 40 and alone[2].steps == probe.steps
    assert alone[1].exposure["subordinate_min"] == 3
    stacked = train_stacked([make_model("nano", VOCAB, seed=k) for k in seeds], [sets] * 3, configs)
    for a, b in zip(alone, stacked, strict=True):
        _assert_same_training(a, b)
        assert a.exposure == b.exposure


def test_exposure_rule_needs_subordinate_statements():
    sets = _sets(P=3, L=3, seed=0)
    sub = sets.subordinate
    sub = {tuple(p) + tuple(a) for p, a in zip(sub.prompts, sub.answers, strict=True)}
    sets.train_sequences = [s for s in sets.train_sequences if tuple(s) not in sub]
    cfg = TrainConfig(rule="exposure", progress=False)
    with pytest.raises(ValueError, match="member 0: rule='exposure' counts presentations"):
        train_stacked([make_model("nano", VOCAB)], [sets], cfg)


def test_trained_models_own_their_weights(tmp_path):
    models = [make_model("pico", VOCAB, seed=k) for k in range(2)]
    sets = _sets(P=2, L=3, seed=0)
    configs = [
        TrainConfig(max_steps=3, eval_every=3, progress=False, seed=k, checkpoint_dir=str(d))
        for k, d in enumerate([tmp_path / "a", tmp_path / "b"])
    ]
    results = train_stacked(models, [sets, sets], configs)
    for r, m in zip(results, models, strict=True):
        assert r.model is m and not m.training
        for p in m.parameters():  # off the stack: contiguous tensors of their own
            assert p.is_contiguous() and p.untyped_storage().nbytes() == p.numel() * 4
            assert p.grad is None
    assert (tmp_path / "a" / "model.safetensors").is_file()
    assert (tmp_path / "b" / "model.safetensors").is_file()
    before = _params(models[0])
    with torch.no_grad():
        models[1].gpt_neox.embed_in.weight.add_(1.0)
    torch.testing.assert_close(
        _params(models[0])["gpt_neox.embed_in.weight"], before["gpt_neox.embed_in.weight"]
    )


@pytest.mark.parametrize("overrides", [{}, {"use_parallel_residual": False}])
def test_stacked_forward_matches_the_lean_forward(overrides):
    models = [make_model("tiny", VOCAB, seed=k, **overrides) for k in range(3)]
    ids = torch.randint(0, VOCAB, (3, 4, 7), generator=torch.Generator().manual_seed(0))
    weights = {
        n: torch.stack([dict(m.named_parameters())[n] for m in models])
        for n, _ in models[0].named_parameters()
    }
    with torch.no_grad():
        ours = neox.stacked_hidden_states(models[0], weights, ids)
        for k, m in enumerate(models):
            theirs = neox.hidden_states(m, ids[k]).reshape(4 * 7, -1)
            torch.testing.assert_close(ours[k], theirs, rtol=1e-5, atol=1e-5)


def test_stacked_loss_matches_the_fused_loss_per_member():
    g = torch.Generator().manual_seed(1)
    h = torch.randn(3, 10, 8, generator=g, requires_grad=True)
    w = torch.randn(3, 30, 8, generator=g, requires_grad=True)
    target = torch.randint(0, 30, (3, 10), generator=g)
    target[1, 7:] = -100  # padding
    weights = torch.tensor([1.0, 2.0, 0.5])
    (StackedLinearCrossEntropy.apply(h, w, target) * weights).sum().backward()
    for k in range(3):
        hk = h.detach()[k].clone().requires_grad_()
        wk = w.detach()[k].clone().requires_grad_()
        loss = LinearCrossEntropy.apply(hk, wk, None, target[k])
        (loss * weights[k]).backward()
        torch.testing.assert_close(h.grad[k], hk.grad, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(w.grad[k], wk.grad, rtol=1e-5, atol=1e-6)
    losses = StackedLinearCrossEntropy.apply(h.detach(), w.detach(), target)
    plain = [
        torch.nn.functional.cross_entropy(h[k].detach() @ w[k].detach().t(), target[k])
        for k in range(3)
    ]
    torch.testing.assert_close(losses, torch.stack(plain), rtol=1e-5, atol=1e-6)


def test_stacked_loss_with_prefix_groups_equals_the_loss_without():
    """Members whose rows repeat prefixes (equal hidden states) give the same losses and
    gradients when each prefix's output row is computed once, padding included."""
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, 3, (2, 40, 4), generator=g)  # a small vocabulary: many repeats
    groups = [prefix_groups(ids[k]) for k in range(2)]
    h = torch.stack([torch.randn(gr.distinct, 8, generator=g)[gr.inverse] for gr in groups])
    h.requires_grad_()
    w = torch.randn(2, 300, 8, generator=g, requires_grad=True)
    target = torch.randint(0, 300, (2, 160), generator=g)
    target[1, 150:] = -100
    weights = torch.tensor([1.0, 0.5])
    grouped = StackedLinearCrossEntropy.apply(h, w, target, groups)
    mine = torch.autograd.grad((grouped * weights).sum(), (h, w))
    plain = StackedLinearCrossEntropy.apply(h, w, target)
    theirs = torch.autograd.grad((plain * weights).sum(), (h, w))
    assert all(gr.distinct < 0.8 * gr.rows for gr in groups)
    torch.testing.assert_close(grouped, plain)
    for a, b in zip(mine, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_loss_survives_an_underflowing_probability():
    h = torch.tensor([[[1.0], [1.0]]])
    w = torch.tensor([[[200.0], [-200.0]]])  # the second token's probability is exp(-400) = 0
    loss = StackedLinearCrossEntropy.apply(h, w, torch.tensor([[1, 0]]))
    assert torch.isfinite(loss).all()
    torch.testing.assert_close(loss, torch.tensor([200.0]), rtol=1e-5, atol=1e-4)


def _refusal(models, sets, configs, pattern):
    before = [
        _params(m)["gpt_neox.embed_in.weight"].clone() for m in models if hasattr(m, "gpt_neox")
    ]
    with pytest.raises(ValueError, match=pattern):
        train_stacked(models, sets, configs)
    after = [_params(m)["gpt_neox.embed_in.weight"] for m in models if hasattr(m, "gpt_neox")]
    for a, b in zip(before, after, strict=True):  # refused before any work
        assert torch.equal(a, b)


def test_refuses_what_it_cannot_stack():
    sets = _sets(P=2, L=3, seed=0)
    cfg = TrainConfig(max_steps=2, progress=False)
    nano = lambda k=0: make_model("nano", VOCAB, seed=k)  # noqa: E731
    _refusal([nano(), make_model("pico", VOCAB)], [sets] * 2, cfg, "another shape")
    _refusal([nano(), tiny_llama(VOCAB)], [sets] * 2, cfg, "GPT-NeoX models only")
    _refusal([nano(), nano(1)], [sets], cfg, "one dataset and one config per model")
    one = nano()
    _refusal([one, one], [sets] * 2, cfg, "same model object")
    _refusal([nano()], [sets], TrainConfig(fast=False, progress=False), "fast=False")
    _refusal(
        [nano(), nano(1)],
        [sets] * 2,
        [TrainConfig(threads=1, progress=False), TrainConfig(threads=2, progress=False)],
        "disagree on threads",
    )
    _refusal([nano()], [sets], TrainConfig(rule="fixed", progress=False), "rule must be one of")
    tied = make_model("nano", VOCAB, tie_word_embeddings=True)
    _refusal([tied], [sets], cfg, "ties its input and output embeddings")
    assert not stackable(tied) and not stackable(tiny_llama(VOCAB)) and stackable(nano())
    with pytest.raises(ValueError, match="at least one model"):
        train_stacked([], [], cfg)


def test_stack_key_groups_runs_of_one_shape_and_length():
    run = {"size": "tiny", "init": "scratch", "L": 5, "span_len": 1, "answer_len": 1, "P": 2}
    assert stack_key(run) == stack_key({**run, "P": 25, "seed": 3, "lr": 1e-2})
    assert stack_key(run) != stack_key({**run, "L": 10})
    assert stack_key(run) != stack_key({**run, "size": "mini"})


def test_plan_stacks_spreads_each_shape_over_the_workers():
    base = {"size": "tiny", "init": "scratch", "span_len": 1, "answer_len": 1}
    runs = [{**base, "L": L, "P": P} for L in (3, 5) for P in (2, 5, 10, 25, 50)]
    stacks = plan_stacks(runs, workers=2)
    assert len(stacks) == 4 and sorted(len(s) for s in stacks) == [2, 2, 3, 3]
    for stack in stacks:
        assert len({stack_key(r) for r in stack}) == 1
    assert sorted(r["P"] + 100 * r["L"] for s in stacks for r in s) == sorted(
        r["P"] + 100 * r["L"] for r in runs
    )
    assert plan_stacks(runs[:1], workers=4) == [runs[:1]]
    assert sorted(len(s) for s in plan_stacks(runs, workers=1, max_members=2)) == [1, 1, 2, 2, 2, 2]
    with pytest.raises(ValueError, match="workers must be >= 1"):
        plan_stacks(runs, workers=0)


def test_recall_check_equals_answer_matches():
    sets = _sets(P=3, L=4, seed=3)
    model = make_model("nano", VOCAB, seed=0)
    _alone(model, sets, TrainConfig(max_steps=60, eval_every=60, lr=1e-2, progress=False))
    dom, sub = sets.dominant, sets.subordinate
    prompts = dom.prompts + [p[1:] for p in sub.prompts]  # two prompt lengths
    answers = dom.answers + sub.answers
    # and each prompt once more with a wrong answer, so that the check sees misses too
    prompts, answers = prompts * 2, answers + [[(t + 1) % VOCAB for t in a] for a in answers]
    expected = answer_matches(model, prompts, answers)
    assert 0 < expected.mean() < 1  # a check that can fail either way
    check = _Recall(prompts, answers, torch.device("cpu"), rows=7)  # several blocks
    assert check(model) == pytest.approx(expected.mean())


def test_plan_lanes_balances_the_steps_over_the_cores():
    lanes = plan_lanes([100, 40, 60, 100, 10], cores=2)
    assert sorted(k for lane in lanes for k in lane) == [0, 1, 2, 3, 4]  # each member once
    assert all(lane == sorted(lane) for lane in lanes)  # members keep their order
    steps = [100, 40, 60, 100, 10]
    assert sorted(sum(steps[k] for k in lane) for lane in lanes) == [150, 160]
    assert plan_lanes([5, 5], cores=8) == [[0], [1]]  # never more lanes than members
    assert plan_lanes([5, 5, 5], cores=1) == [[0, 1, 2]]


def _lane_runs():
    sets = [_sets(P=P, L=3, seed=k) for k, P in enumerate((2, 3, 5))]
    configs = [
        TrainConfig(rule="epochs", epochs=2, eval_every=2, seed=k, progress=False, batch_size=8)
        for k in range(3)
    ]
    return sets, configs


LANE_MODES = ["threads"] + (["fork"] if stacked.LANES == "fork" else [])


@pytest.mark.parametrize("mode", LANE_MODES)
def test_lanes_on_two_cores_train_exactly_as_one_stack_on_one(mode, monkeypatch):
    """Two lanes (forked processes or threads, one intra-op thread each) and one
    single-threaded stack do the same arithmetic for each member: the same weights, histories
    and exposure counts, to the bit."""
    monkeypatch.setattr(stacked, "LANES", mode)
    sets, configs = _lane_runs()
    runs = {}
    caller = torch.get_num_threads()
    for threads in (1, 2):
        models = [make_model("nano", VOCAB, seed=k) for k in range(3)]
        runs[threads] = train_stacked(models, sets, configs, threads=threads)
    for one, two in zip(runs[1], runs[2], strict=True):
        assert (one.steps, one.tokens, one.stop_reason) == (two.steps, two.tokens, two.stop_reason)
        assert (one.converged, one.exposure) == (two.converged, two.exposure)
        cols = ["step", "epoch", "loss", "RR"]
        assert one.history[cols].equals(two.history[cols])
        for p, q in zip(one.model.parameters(), two.model.parameters(), strict=True):
            assert torch.equal(p, q)
        assert not two.model.training
    assert torch.get_num_threads() == caller  # the caller's threads are back


def _endless_runs():
    """The lane runs made to train 10,000 steps (nothing can stop them earlier at this
    learning rate) unless told to stop."""
    sets, configs = _lane_runs()
    configs = [
        TrainConfig(**{**vars(c), "rule": "converge", "max_steps": 10**4, "lr": 1e-12})
        for c in configs
    ]
    configs = [TrainConfig(**{**vars(c), "patience": 10**6}) for c in configs]
    assert plan_lanes([10**4] * 3, cores=2) == [[0, 2], [1]]
    return sets, configs


@pytest.mark.parametrize("mode", LANE_MODES)
def test_a_failing_lane_stops_the_others_and_raises(mode, monkeypatch, tmp_path):
    """Member 1 fails at its third step; the lane of members 0 and 2 stops long before its
    10,000 steps. Each step is written to a file, which a forked lane shares with this test."""
    monkeypatch.setattr(stacked, "LANES", mode)
    sets, configs = _endless_runs()
    record = _Member.record
    log = tmp_path / "steps.txt"

    def failing(self, loss, tokens, elapsed):
        with log.open("a") as f:
            f.write(f"{self.index} {self.steps + 1}\n")
        if self.index == 1 and self.steps == 2:
            raise RuntimeError("member 1 broke")
        return record(self, loss, tokens, elapsed)

    monkeypatch.setattr(_Member, "record", failing)
    models = [make_model("nano", VOCAB, seed=k) for k in range(3)]
    threads = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="member 1 broke") as err:
        train_stacked(models, sets, configs, threads=2)
    if mode == "fork":  # the lane's own traceback comes along as the cause
        assert "in failing" in str(err.value.__cause__)
    steps: dict[int, int] = {}
    for index, step in (map(int, line.split()) for line in log.read_text().splitlines()):
        steps[index] = max(steps.get(index, 0), step)
    assert steps[1] == 3 and max(steps[0], steps[2]) < 1000  # stopped early, not at 10,000
    assert torch.get_num_threads() == threads  # the caller's threads are back


@pytest.mark.skipif(stacked.LANES != "fork", reason="lanes are threads on this platform")
def test_a_lane_process_that_dies_is_reported(monkeypatch, tmp_path):
    """A lane's process that ends without sending a result (killed, say, for memory) is an
    error that says so, and the other lane is stopped long before its 10,000 steps."""
    sets, configs = _endless_runs()
    record = _Member.record
    log = tmp_path / "steps.txt"

    def dying(self, loss, tokens, elapsed):
        if self.index == 1 and self.steps == 2:
            os._exit(1)
        if self.index == 0:
            with log.open("a") as f:
                f.write(f"{self.steps + 1}\n")
        return record(self, loss, tokens, elapsed)

    monkeypatch.setattr(_Member, "record", dying)
    models = [make_model("nano", VOCAB, seed=k) for k in range(3)]
    with pytest.raises(RuntimeError, match="ended without a result"):
        train_stacked(models, sets, configs, threads=2)
    assert max(map(int, log.read_text().split())) < 1000  # member 0's lane stopped early
