"""Fixtures shared by every test module: the tiny models of ``tests/tiny.py``, built once per
module, and one CPU thread for the modules that run them."""

from __future__ import annotations

import pytest
import torch

from tests.tiny import tiny_llama, tiny_neox


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def llama():
    """The default tiny Llama (see :func:`tests.tiny.tiny_llama`)."""
    return tiny_llama()


@pytest.fixture(scope="module")
def neox():
    """The default tiny GPT-NeoX (see :func:`tests.tiny.tiny_neox`)."""
    return tiny_neox()
