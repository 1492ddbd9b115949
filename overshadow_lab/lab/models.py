"""Causal language models for the lab: a size name, a hub id or a local folder.

``SIZES`` lists GPT-NeoX configurations (the architecture of Pythia, the paper's model family):
first a CPU family from ~0.1M to ~10M parameters at vocabulary 2,000 (``pico`` ... ``medium``),
then the shapes of the Pythia suite up to ~1B (``pythia-14m`` ... ``pythia-1b``, here with the
vocabulary of the experiment, so their parameter counts differ from the released checkpoints').
``make_model`` builds any of them from scratch, or loads a hub id / local folder either with its
pretrained weights (``init="pretrained"``) or re-initialised from its config (``init="scratch"``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from overshadow_lab.lab.data import EvalSet, KnowledgeSets, SyntheticConfig

# hidden size, layers, heads; intermediate = 4 * hidden (as in Pythia)
SIZES: dict[str, dict] = {
    "pico": {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2},
    "nano": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2},
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4},
    "mini": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4},
    "small": {"hidden_size": 192, "num_hidden_layers": 4, "num_attention_heads": 6},
    "medium": {"hidden_size": 320, "num_hidden_layers": 6, "num_attention_heads": 8},
    "pythia-14m": {"hidden_size": 128, "num_hidden_layers": 6, "num_attention_heads": 4},
    "pythia-70m": {"hidden_size": 512, "num_hidden_layers": 6, "num_attention_heads": 8},
    "pythia-160m": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12},
    "pythia-410m": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16},
    "pythia-1b": {"hidden_size": 2048, "num_hidden_layers": 16, "num_attention_heads": 8},
}
CPU_SIZES: tuple[str, ...] = ("pico", "nano", "tiny", "mini", "small", "medium")
GPU_SIZES: tuple[str, ...] = ("pythia-14m", "pythia-70m", "pythia-160m", "pythia-410m", "pythia-1b")
INITS = ("scratch", "pretrained")


def neox_config(size: str = "tiny", vocab_size: int = 2000, max_positions: int = 512, **overrides):
    """The ``GPTNeoXConfig`` of a named size (Pythia conventions: rotary 25%, parallel residual)."""
    from transformers import GPTNeoXConfig

    if size not in SIZES:
        raise ValueError(
            f"unknown model size {size!r}: use one of {', '.join(SIZES)}, a hub id or a local folder"
        )
    shape = dict(SIZES[size])
    kw: dict[str, Any] = dict(
        vocab_size=int(vocab_size),
        hidden_size=shape["hidden_size"],
        num_hidden_layers=shape["num_hidden_layers"],
        num_attention_heads=shape["num_attention_heads"],
        intermediate_size=4 * shape["hidden_size"],
        max_position_embeddings=max_positions,
        rotary_pct=0.25,
        use_parallel_residual=True,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
    )
    kw.update(overrides)
    cfg = GPTNeoXConfig(**kw)
    return cfg


def _is_path_or_hub(size: str) -> bool:
    return os.path.isdir(size) or "/" in size


def make_model(
    size: str = "tiny",
    vocab_size: int = 2000,
    init: str = "scratch",
    seed: int = 0,
    **config_overrides: Any,
):
    """Build a causal LM: a size of ``SIZES`` (from scratch) or a hub id / local folder.

    For a hub id or folder, ``init="pretrained"`` loads its weights; ``init="scratch"`` keeps
    its architecture but re-initialises every weight with ``seed`` (the paper is ambiguous about
    which it did, SPEC §3). ``vocab_size`` is ignored for pretrained models (their tokenizer
    fixes it); extra keyword arguments override config fields (e.g. ``num_hidden_layers=3``).
    """
    from transformers import AutoConfig, AutoModelForCausalLM, GPTNeoXForCausalLM

    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if not isinstance(size, str):
        raise ValueError(f"size must be a string (a name of SIZES, hub id or folder), got {size!r}")
    torch.manual_seed(int(seed))
    if size in SIZES:
        if init == "pretrained":
            raise ValueError(
                f"size {size!r} is a built-in shape with no pretrained weights; use init='scratch' "
                f"or pass a hub id / local folder (e.g. 'EleutherAI/pythia-160m') for pretrained"
            )
        model = GPTNeoXForCausalLM(neox_config(size, vocab_size, **config_overrides))
    elif _is_path_or_hub(size):
        if init == "pretrained":
            kw = {}
            gguf = config_overrides.pop("gguf_file", None)
            if gguf is not None:
                kw["gguf_file"] = gguf
            model = AutoModelForCausalLM.from_pretrained(size, **kw)
        else:
            cfg = AutoConfig.from_pretrained(size, **config_overrides)
            model = AutoModelForCausalLM.from_config(cfg)
    else:
        raise ValueError(
            f"unknown model size {size!r}: use one of {', '.join(SIZES)}, a hub id "
            f"('owner/name') or an existing local folder"
        )
    model.eval()
    return model


def count_parameters(model: torch.nn.Module, trainable_only: bool = False) -> int:
    """Exact number of parameters (shared tensors counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return int(total)


def size_parameters(size: str, vocab_size: int = 2000) -> int:
    """Exact parameter count of a named size without building it.

    GPT-NeoX with untied embeddings: ``2*V*d`` (input and output embeddings) plus, per layer,
    two layer norms ``4d``, fused QKV ``3d^2+3d``, output projection ``d^2+d`` and the MLP
    ``8d^2+5d``, plus the final layer norm ``2d``: ``2Vd + layers*(12d^2 + 13d) + 2d``.
    (``tests/lab/test_models.py`` checks it against :func:`count_parameters` of built models.)
    """
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}: use one of {', '.join(SIZES)}")
    d, layers = SIZES[size]["hidden_size"], SIZES[size]["num_hidden_layers"]
    return int(2 * vocab_size * d + layers * (12 * d * d + 13 * d) + 2 * d)


def save_run(directory: str | Path, model, sets=None, extra: dict | None = None) -> Path:
    """Save a trained model (``save_pretrained``, safetensors) and the knowledge sets it saw.

    The sets are stored as ``knowledge_sets.json`` (config + all token ids), so that a later
    chapter can ``load_run`` the pair and probe the exact prompts the model was trained on.
    """
    import json

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    if sets is not None:
        payload = {
            "config": sets.config.describe(),
            "vocab_size": sets.vocab_size,
            "train_sequences": sets.train_sequences,
            "dominant": vars(sets.dominant),
            "subordinate": vars(sets.subordinate),
        }
        (directory / "knowledge_sets.json").write_text(json.dumps(payload))
    if extra is not None:
        (directory / "run_info.json").write_text(json.dumps(extra, default=str))
    return directory


def load_run(directory: str | Path):
    """Load ``(model, sets)`` saved by :func:`save_run` (``sets`` is None if none was saved)."""
    from transformers import AutoModelForCausalLM

    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(
            f"{directory} holds no saved model (config.json); run save_run first"
        )
    model = AutoModelForCausalLM.from_pretrained(directory)
    model.eval()
    return model, load_sets(directory)


def load_sets(directory: str | Path):
    """The knowledge sets saved by :func:`save_run` in ``directory``, or None if none were saved
    (reads only ``knowledge_sets.json``, not the model)."""
    import json

    f = Path(directory) / "knowledge_sets.json"
    if not f.is_file():
        return None
    d = json.loads(f.read_text())
    cfg = dict(d["config"])
    if not isinstance(cfg.get("vocab"), int):
        cfg["vocab"] = d["vocab_size"]
    return KnowledgeSets(
        config=SyntheticConfig(**cfg),
        vocab_size=d["vocab_size"],
        train_sequences=d["train_sequences"],
        dominant=EvalSet(**d["dominant"]),
        subordinate=EvalSet(**d["subordinate"]),
    )
