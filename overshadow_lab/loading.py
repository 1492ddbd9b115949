"""One door for loading a model by any name: ``load_model(name) -> (model, tokenizer)``.

The chapters, the fine-tuning code, the GPU tier and the command line all name models the same
way, and this module decides what a name means, in this order:

1. **an existing folder**: a Hugging Face folder (``config.json`` with tokenizer files, or a
   ``.gguf`` file) through :func:`overshadow_lab.hub.load_pretrained`; or a run of the lab saved
   by :func:`overshadow_lab.lab.models.save_run` (``config.json`` and weights, no tokenizer: its
   tokens are ids of a synthetic vocabulary), through :func:`~overshadow_lab.lab.models.load_run`,
   with ``None`` as tokenizer;
2. **a short name** of ``overshadow_lab.hub.KNOWN_MODELS`` (``smollm2-135m-instruct`` works
   offline) or the hub id of one, through ``load_pretrained``;
3. **a lab size** of ``overshadow_lab.lab.models.SIZES`` (``pico``, ``tiny``, ...): a GPT-NeoX
   model of that shape built from scratch over the 256-token
   :class:`~overshadow_lab.finetuning.tokenizers.ByteTokenizer`, a CPU-sized stand-in for a pretrained
   model that reads any text. The lab's Pythia shapes share their names with the released
   checkpoints (``pythia-160m``); such a name means the checkpoint (step 2). To train a shape from
   scratch on a synthetic corpus, use :func:`~overshadow_lab.lab.models.make_model`;
4. **any other hub id** ``owner/name``, through ``load_pretrained`` (it needs the hub).

Anything else raises one ``ValueError`` that lists what is accepted, before any work starts.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from overshadow_lab.device import get_device
from overshadow_lab.finetuning.tokenizers import ByteTokenizer
from overshadow_lab.hub import KNOWN_MODELS, load_pretrained, short_name
from overshadow_lab.lab.models import SIZES, load_run, make_model

#: Files that make a folder hold a tokenizer (a folder with ``config.json`` and none of them is
#: a saved lab run).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


def lab_sizes() -> list[str]:
    """The lab sizes that :func:`load_model` builds from scratch (those not shadowed by a
    short name of a released checkpoint)."""
    return [size for size in SIZES if size not in KNOWN_MODELS]


def model_kind(name: str | Path) -> str:
    """What :func:`load_model` will do with ``name``: ``"pretrained folder"``, ``"lab run"``,
    ``"short name"``, ``"lab size"`` or ``"hub id"``; raises ``ValueError`` for anything else."""
    if not isinstance(name, str | Path) or not str(name).strip():
        raise ValueError(f"a model name must be a non-empty string or path, got {name!r}")
    folder = Path(str(name)).expanduser()
    if folder.is_dir():
        if (folder / "config.json").is_file():
            has_tokenizer = any((folder / f).is_file() for f in TOKENIZER_FILES)
            return "pretrained folder" if has_tokenizer else "lab run"
        if any(folder.glob("*.gguf")):
            return "pretrained folder"
        raise ValueError(
            f"folder {folder} holds no model: expected config.json (a Hugging Face folder or a "
            "run saved by save_run) or a .gguf file"
        )
    text = str(name).strip()
    if short_name(text) is not None:
        return "short name"
    if text in SIZES:
        return "lab size"
    if _HUB_ID.fullmatch(text):
        return "hub id"
    raise ValueError(
        f"unknown model {text!r}: use a lab size ({', '.join(lab_sizes())}), a short name "
        f"({', '.join(KNOWN_MODELS)}), a hub id 'owner/name' or an existing folder"
    )


def load_model(
    name: str | Path, device: str | torch.device | None = None, dtype: torch.dtype | None = None
):
    """``(model, tokenizer)`` for a lab size, a short name, a hub id or a folder (module doc).

    The model is in eval mode on ``get_device(device)``; ``dtype`` (default: float32) sets its
    floating-point type. A pretrained tokenizer pads on the left and has a pad token; a lab size
    comes with a :class:`~overshadow_lab.finetuning.tokenizers.ByteTokenizer`; a saved lab run comes
    with ``None`` (its tokens are ids of the synthetic vocabulary it was trained on).
    """
    kind = model_kind(name)
    if kind in ("pretrained folder", "short name", "hub id"):
        return load_pretrained(str(name), dtype=dtype, device=device)
    if kind == "lab run":
        model, tokenizer = load_run(name)[0], None
    else:
        tokenizer = ByteTokenizer()
        model = make_model(str(name).strip(), vocab_size=len(tokenizer))
    model = model.to(get_device(device)).eval()
    return (model if dtype is None else model.to(dtype=dtype)), tokenizer


class _Float32Head(torch.nn.Linear):
    """An output layer that computes in float32 whatever the dtype of the hidden states."""

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return super().forward(hidden.float())


def float32_output_layer(model):
    """Give a 16-bit Hugging Face model a float32 output layer, in place; returns the model.

    Contrastive decoding compares log-probabilities of two close distributions (with and without
    a span): the differences that matter are tenths of a nat, and bfloat16 logits of magnitude
    16-32 are rounded to steps of 0.125. Computing the vocabulary projection in float32 (from the
    16-bit hidden states, with a float32 copy of the weights, untied from the input embeddings)
    removes that rounding at the cost of one projection in float32, which is cheap when only the
    last position's logits are computed (``logits_to_keep=1``, as generation and CoDA's detection
    do). A model whose output layer is already float32 is returned unchanged.
    """
    head = model.get_output_embeddings()
    if head is None or not isinstance(head, torch.nn.Linear):
        raise ValueError(
            f"{type(model).__name__} has no linear output layer to keep in float32; load it "
            "in float32 instead"
        )
    if head.weight.dtype == torch.float32:
        return model
    new = _Float32Head(
        head.in_features, head.out_features, bias=head.bias is not None, device=head.weight.device
    )
    with torch.no_grad():
        new.weight.copy_(head.weight.float())
        if head.bias is not None:
            new.bias.copy_(head.bias.float())
    new.requires_grad_(False)
    model.set_output_embeddings(new)
    model.config.tie_word_embeddings = False  # a saved copy keeps its own float32 head
    return model
