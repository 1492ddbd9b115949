"""Fixtures of the decoding tests: one CPU thread, and the tiny models built once per module."""

from __future__ import annotations

import pytest
import torch

from tests.decoding.tiny_models import tiny_llama, tiny_neox


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def llama():
    return tiny_llama()


@pytest.fixture(scope="module")
def neox():
    return tiny_neox()
