"""Where computations run (`get_device`) and how big they are (compute tiers).

Every chapter has two sizes of the same computation: the ``cpu`` tier, small enough for a
2-core laptop or CI, and the ``gpu`` tier, the larger run for a Colab T4 or better. The tier is
picked automatically (``gpu`` when CUDA is available) and can be forced with an argument or the
``OVERSHADOW_TIER`` environment variable; the device likewise with ``OVERSHADOW_DEVICE``.

torch is imported by :func:`_torch` only, on the first call that must ask the hardware: importing
this module (and so ``import overshadow_lab`` and the command line) stays free of torch's
second or more of start-up, and a tier given by argument or environment never loads it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

TIERS: tuple[str, ...] = ("cpu", "gpu")
TIER_ENV = "OVERSHADOW_TIER"
DEVICE_ENV = "OVERSHADOW_DEVICE"


def _torch() -> ModuleType:
    """torch, imported on first use: the one deferred import of this module (see above)."""
    import torch

    return torch


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Return the torch device to compute on.

    Precedence: the ``device`` argument, then ``$OVERSHADOW_DEVICE``, then ``cuda`` when a
    CUDA GPU is visible, else ``cpu``. Apple's ``mps`` is used only when asked for by name, so
    that results on a laptop never change silently with the hardware.
    """
    torch = _torch()
    choice = device if device is not None else os.environ.get(DEVICE_ENV) or None
    if choice is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(choice)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {str(dev)!r} was requested but CUDA is not available here; "
            f"unset {DEVICE_ENV} or pass device='cpu'"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(
            f"device 'mps' was requested but MPS is not available; unset {DEVICE_ENV}"
        )
    return dev


def get_tier(tier: str | None = None) -> str:
    """Return the compute tier, ``"cpu"`` or ``"gpu"``.

    Precedence: the ``tier`` argument, then ``$OVERSHADOW_TIER``, then ``"gpu"`` when CUDA is
    available, else ``"cpu"``. The ``gpu`` tier can be forced on a CPU (it is only slower).
    Only the last case asks the hardware (and so imports torch).
    """
    choice = tier if tier is not None else os.environ.get(TIER_ENV) or None
    if choice is None:
        return "gpu" if _torch().cuda.is_available() else "cpu"
    choice = str(choice).strip().lower()
    if choice not in TIERS:
        raise ValueError(
            f"unknown compute tier {choice!r}: use one of {', '.join(TIERS)} "
            f"(argument `tier=` or environment variable {TIER_ENV})"
        )
    return choice


def tier_settings(
    settings: Mapping[str, Mapping[str, Any]], tier: str | None = None
) -> dict[str, Any]:
    """Pick one tier's settings from ``{"cpu": {...}, "gpu": {...}}``.

    Chapters keep both sizes side by side in one dictionary, so that the single setting
    ``OVERSHADOW_TIER`` (or ``tier=``) scales the whole chapter. The returned dict carries the
    chosen tier under the key ``"tier"``.
    """
    missing = [t for t in TIERS if t not in settings]
    if missing:
        raise ValueError(f"tier settings must define every tier; missing: {', '.join(missing)}")
    name = get_tier(tier)
    out = dict(settings[name])
    out["tier"] = name
    return out
