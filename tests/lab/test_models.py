"""Tests of overshadow_lab.lab.models: sizes, exact parameter counts, save/load of a run."""

import pytest
import torch

from overshadow_lab.lab.data import make_knowledge_sets
from overshadow_lab.lab.models import (
    CPU_SIZES,
    SIZES,
    count_parameters,
    load_run,
    make_model,
    neox_config,
    save_run,
    size_parameters,
)


def _formula(size, vocab):
    d, layers = SIZES[size]["hidden_size"], SIZES[size]["num_hidden_layers"]
    per_layer = (
        2 * 2 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    )
    return 2 * vocab * d + layers * per_layer + 2 * d


@pytest.mark.parametrize("size", ["nano", "tiny", "mini"])
def test_exact_parameter_count(size):
    model = make_model(size, vocab_size=500)
    assert count_parameters(model) == _formula(size, 500) == size_parameters(size, 500)


def test_size_family_spans_two_orders_of_magnitude():
    counts = [size_parameters(s) for s in CPU_SIZES]
    assert counts == sorted(counts)
    assert counts[0] < 2e5 and counts[-1] >= 100 * counts[0] and counts[-1] < 1.2e7
    assert 0.7e9 < size_parameters("pythia-1b") < 1.2e9


def test_seeded_init_and_overrides():
    a, b, c = (
        make_model("nano", 100, seed=1),
        make_model("nano", 100, seed=1),
        make_model("nano", 100, seed=2),
    )
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    assert make_model("nano", 100, num_hidden_layers=3).config.num_hidden_layers == 3


def test_scratch_from_folder_and_pretrained(tmp_path):
    model = make_model("nano", 100, seed=0)
    model.save_pretrained(tmp_path)
    same = make_model(str(tmp_path), init="pretrained")
    fresh = make_model(str(tmp_path), init="scratch", seed=5)
    w0 = model.gpt_neox.embed_in.weight
    assert torch.equal(same.gpt_neox.embed_in.weight, w0)
    assert not torch.equal(fresh.gpt_neox.embed_in.weight, w0)
    assert count_parameters(fresh) == count_parameters(model)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"size": "huge"}, r"unknown model size 'huge'.*use one of pico, nano"),
        ({"size": "tiny", "init": "pretrained"}, r"no pretrained weights.*init='scratch'"),
        ({"size": "tiny", "init": "random"}, r"init must be one of scratch, pretrained"),
    ],
)
def test_bad_inputs(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make_model(**kwargs)
    with pytest.raises(ValueError, match="unknown model size"):
        neox_config("huge")


def test_save_and_load_run(tmp_path):
    sets = make_knowledge_sets(P=3, L=3, n_sets=4, vocab=200)
    model = make_model("nano", sets.vocab_size)
    save_run(tmp_path / "run", model, sets, extra={"note": 1})
    m2, s2 = load_run(tmp_path / "run")
    assert s2.train_sequences == sets.train_sequences
    assert s2.subordinate.distinct_positions == sets.subordinate.distinct_positions
    assert s2.subordinate.overshadow_answers == sets.subordinate.overshadow_answers
    assert s2.config == sets.config
    ids = torch.tensor(sets.train_sequences[:2])
    assert torch.allclose(m2(ids).logits, model(ids).logits)
    assert (tmp_path / "run" / "model.safetensors").is_file()
    with pytest.raises(FileNotFoundError, match="save_run"):
        load_run(tmp_path / "nothing")
