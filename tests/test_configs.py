"""Keyword overrides of configuration dataclasses."""

from dataclasses import dataclass

import pytest

from overshadow_lab.configs import override


@dataclass(frozen=True)
class Demo:
    a: int = 1
    b: str = "x"


def test_override_applies_keywords_and_leaves_the_original():
    base = Demo()
    assert override(base, {"a": 5}) == Demo(a=5, b="x")
    assert base == Demo() and override(base, {}) is base


def test_unknown_keys_are_named_with_the_fields_there_are():
    with pytest.raises(ValueError, match=r"unknown option\(s\) c, d; Demo takes a, b"):
        override(Demo(), {"c": 1, "a": 2, "d": 3}, "option")
