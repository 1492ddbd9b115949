"""``load_model``: one door for a lab size, a short name, a hub id and a folder of either kind."""

from __future__ import annotations

import pytest
import torch

from overshadow_lab import loading
from overshadow_lab.finetuning.tokenizers import ByteTokenizer
from overshadow_lab.lab.data import make_knowledge_sets
from overshadow_lab.lab.models import count_parameters, make_model, save_run
from overshadow_lab.loading import load_model, model_kind
from tests.tiny import tiny_llama, tiny_lm


@pytest.fixture
def hub_calls(monkeypatch):
    """Replace the hub loader by a recorder: which names reach it, with which options."""
    calls = []

    def fake(name, dtype=None, device=None):
        calls.append((name, dtype, device))
        return "model", "tokenizer"

    monkeypatch.setattr(loading, "load_pretrained", fake)
    return calls


def test_a_lab_size_is_built_from_scratch_over_bytes():
    model, tok = load_model("pico", device="cpu")
    assert isinstance(tok, ByteTokenizer)
    assert model.get_input_embeddings().weight.shape[0] == len(tok) == 256
    assert not model.training and next(model.parameters()).device.type == "cpu"
    assert count_parameters(model) == count_parameters(make_model("pico", vocab_size=256))
    model64, _ = load_model("nano", dtype=torch.float64)
    assert next(model64.parameters()).dtype == torch.float64


@pytest.mark.parametrize(
    "name",
    ["smollm2-135m-instruct", "SmolLM2-135M-Instruct", "HuggingFaceTB/SmolLM2-135M", "pythia-160m"],
)
def test_short_names_and_their_hub_ids_go_to_the_hub_loader(hub_calls, name):
    assert model_kind(name) == "short name"
    assert load_model(name, device="cpu", dtype=torch.bfloat16) == ("model", "tokenizer")
    assert hub_calls == [(name, torch.bfloat16, "cpu")]


def test_any_other_hub_id_goes_to_the_hub_loader(hub_calls):
    assert model_kind("EleutherAI/pythia-2.8b") == "hub id"
    load_model("EleutherAI/pythia-2.8b")
    assert hub_calls == [("EleutherAI/pythia-2.8b", None, None)]


def test_a_hugging_face_folder_loads_with_its_tokenizer(tmp_path):
    model, tok = tiny_lm(["hello", "world"])
    model.save_pretrained(tmp_path / "hf")
    tok.save_pretrained(tmp_path / "hf")
    assert model_kind(tmp_path / "hf") == "pretrained folder"
    loaded, loaded_tok = load_model(tmp_path / "hf", device="cpu")
    ids = torch.tensor([loaded_tok.encode("hello world")])
    assert torch.allclose(loaded(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-6)
    assert loaded_tok.padding_side == "left" and loaded_tok.pad_token_id is not None


def test_a_saved_lab_run_loads_without_a_tokenizer(tmp_path):
    sets = make_knowledge_sets(P=2, L=3, n_sets=2, vocab=60, seed=0)
    model = make_model("nano", vocab_size=sets.vocab_size, seed=4)
    save_run(tmp_path / "run", model, sets)
    assert model_kind(str(tmp_path / "run")) == "lab run"
    loaded, tok = load_model(str(tmp_path / "run"), device="cpu")
    assert tok is None and not loaded.training
    x = torch.tensor([sets.train_sequences[0]])
    assert torch.allclose(loaded(input_ids=x).logits, model(input_ids=x).logits, atol=1e-6)


def test_an_unknown_name_says_in_one_line_what_is_accepted(hub_calls, tmp_path):
    with pytest.raises(ValueError) as err:
        load_model("gpt-7")
    msg = str(err.value)
    assert "\n" not in msg and "unknown model 'gpt-7'" in msg
    for accepted in ("pico", "smollm2-135m-instruct", "hub id 'owner/name'", "existing folder"):
        assert accepted in msg
    assert "pythia-160m" not in msg.split("a short name")[0]  # a checkpoint's name, not a size
    with pytest.raises(ValueError, match="unknown model"):
        load_model("no/such/folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no model"):
        load_model(tmp_path / "empty")
    with pytest.raises(ValueError, match="non-empty string"):
        load_model(7)
    assert hub_calls == []  # every error came before any loading


def test_a_16_bit_model_keeps_a_float32_output_layer_close_to_the_float32_model():
    model = tiny_llama(tie_word_embeddings=True)
    ids = torch.tensor([[3, 17, 5, 9, 41, 2]])
    with torch.no_grad():
        want = model(ids).logits
        half = loading.float32_output_layer(model.to(torch.bfloat16))
        got = half(ids).logits
        plain = tiny_llama(tie_word_embeddings=True).to(torch.bfloat16)(ids).logits
    assert got.dtype == torch.float32 and plain.dtype == torch.bfloat16
    # only the hidden states are rounded now, not the logits themselves
    assert (got - want).abs().max() < (plain.float() - want).abs().max()
    assert half.model.embed_tokens.weight.dtype == torch.bfloat16  # the body stays 16-bit
    assert loading.float32_output_layer(half) is half  # already float32: unchanged


def test_a_float32_output_layer_needs_a_linear_head():
    class NoHead(torch.nn.Module):
        def get_output_embeddings(self):
            return None

    with pytest.raises(ValueError, match="no linear output layer"):
        loading.float32_output_layer(NoHead())
