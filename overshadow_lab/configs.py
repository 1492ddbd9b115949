"""Configurations as dataclasses: the one way keyword overrides are applied to them.

``make_knowledge_sets(P=10)``, ``train_model(model, sets, lr=1e-3)`` and ``make_task("negation",
P=8)`` all take a configuration object or its fields as keywords; :func:`override` applies the
keywords and names, in one line, the fields that do not exist and those that do.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any


def override(config: Any, overrides: dict[str, Any], what: str = "parameter") -> Any:
    """``config`` with ``overrides`` applied (``dataclasses.replace``); a ValueError naming the
    unknown keys and the fields the configuration takes when any key is not one of its fields."""
    if not overrides:
        return config
    names = [f.name for f in fields(config)]
    unknown = [k for k in overrides if k not in names]
    if unknown:
        raise ValueError(
            f"unknown {what}(s) {', '.join(unknown)}; {type(config).__name__} takes "
            f"{', '.join(names)}"
        )
    return replace(config, **overrides)
