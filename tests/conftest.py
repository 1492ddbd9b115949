"""Fixtures shared by every test module: the tiny models of ``tests/tiny.py``, built once per
module, and one CPU thread for the modules that run them."""

from __future__ import annotations

import os

import pytest
import torch

from tests.tiny import tiny_llama, tiny_neox

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make unit` runs one pytest-xdist worker per core: each keeps to one thread, and so do the
    # processes its tests start, or the workers' thread pools fight for the cores (the unit
    # tests beside the chapters, each with two threads on two cores, took 1,200 s, not 341 s).
    torch.set_num_threads(1)
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_name] = "1"


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
