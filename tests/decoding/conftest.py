"""The decoding tests run their tiny models on one CPU thread (fixture in tests/conftest.py)."""

import pytest


@pytest.fixture(scope="module", autouse=True)
def _decoding_on_one_thread(one_thread):
    yield
