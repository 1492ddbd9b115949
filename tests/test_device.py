import pytest
import torch

from overshadow_lab.device import get_device, get_tier, tier_settings


def test_tier_follows_hardware_by_default(monkeypatch):
    monkeypatch.delenv("OVERSHADOW_TIER", raising=False)
    assert get_tier() == ("gpu" if torch.cuda.is_available() else "cpu")


def test_tier_argument_beats_environment(monkeypatch):
    monkeypatch.setenv("OVERSHADOW_TIER", "gpu")
    assert get_tier() == "gpu"
    assert get_tier("cpu") == "cpu"
    assert get_tier(" GPU ") == "gpu"


def test_unknown_tier_names_the_choices(monkeypatch):
    monkeypatch.setenv("OVERSHADOW_TIER", "tpu")
    with pytest.raises(ValueError, match="unknown compute tier 'tpu'.*cpu, gpu.*OVERSHADOW_TIER"):
        get_tier()


def test_tier_settings_picks_one_tier_and_records_it():
    settings = {"cpu": {"seeds": 3}, "gpu": {"seeds": 5}}
    assert tier_settings(settings, tier="gpu") == {"seeds": 5, "tier": "gpu"}
    assert tier_settings(settings, tier="cpu") == {"seeds": 3, "tier": "cpu"}
    with pytest.raises(ValueError, match="missing: gpu"):
        tier_settings({"cpu": {}}, tier="cpu")


def test_device_precedence(monkeypatch):
    monkeypatch.delenv("OVERSHADOW_DEVICE", raising=False)
    assert get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setenv("OVERSHADOW_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    assert get_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_request_without_cuda_says_how_to_fix():
    with pytest.raises(RuntimeError, match="CUDA is not available.*device='cpu'"):
        get_device("cuda")


def test_tier_settings_checks_the_settings_before_choosing_a_tier():
    """A malformed settings dict is named even when the tier is wrong too: one clear error,
    raised before the hardware (and torch) is consulted."""
    with pytest.raises(ValueError, match="missing: gpu"):
        tier_settings({"cpu": {}}, tier="tpu")
