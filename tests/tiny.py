"""Tiny models and data rows shared by the test modules (no files, no network).

* :func:`tiny_llama` and :func:`tiny_neox`: random decoders of two architectures whose caches
  and positions differ (Llama: grouped keys; GPT-NeoX: partial rotary embeddings). Every test
  that needs a small transformers model builds it here, with its own sizes where it must.
* :func:`tiny_lm`: a word-level tokenizer and a tiny Llama over it, for text benchmarks.
* :data:`MEMO_CSV`, :data:`NQ_ROW`: one benchmark file and row in the real schemas.

``tests/conftest.py`` turns the default models into fixtures.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

#: The vocabulary of the default tiny models (id 0 is padding).
VOCAB = 48


def tiny_llama(
    vocab_size: int = VOCAB,
    seed: int = 0,
    *,
    layers: int = 2,
    hidden: int = 32,
    heads: int = 4,
    kv_heads: int | None = 2,
    initializer_range: float = 0.3,
    **config,
) -> LlamaForCausalLM:
    """A random Llama in eval mode (2 layers, 4 heads over 2 key-value heads by default).

    ``config`` passes further :class:`~transformers.LlamaConfig` fields (``tie_word_embeddings``,
    token ids); the default token ids are pad 0 and no BOS/EOS.
    """
    torch.manual_seed(seed)
    settings = {"pad_token_id": 0, "bos_token_id": None, "eos_token_id": None, **config}
    cfg = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        initializer_range=initializer_range,
        **settings,
    )
    return LlamaForCausalLM(cfg).eval()


def tiny_neox(vocab_size: int = VOCAB, seed: int = 0) -> GPTNeoXForCausalLM:
    """A random 4-layer GPT-NeoX in eval mode, rotary embeddings on a quarter of each head."""
    torch.manual_seed(seed)
    cfg = GPTNeoXConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        initializer_range=0.4,
        rotary_pct=0.25,
        bos_token_id=None,
        eos_token_id=None,
    )
    return GPTNeoXForCausalLM(cfg).eval()


def random_prompts(n: int = 8, seed: int = 1, vocab_size: int = VOCAB) -> list[list[int]]:
    """``n`` prompts of 3 to 9 random token ids (no 0: that is the padding id)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 10, (n,), generator=g).tolist()
    return [torch.randint(1, vocab_size, (k,), generator=g).tolist() for k in lengths]


MEMO_CSV = (
    "prompt,classes,answer_index\n"
    '"Write a quote that ends in the word ""heavy"": Absence makes the heart grow","[\' heavy.\', \' fonder.\']",0\n'
    "\"Translate into English.\nline two\nto:\nThe absent are always in the\",\"[' wrong.', ' background.']\",1\n"
)

NQ_ROW = {
    "question": "who wrote it",
    "org_context": "<P> Ann wrote it . </P>",
    "org_answer": ["Ann"],
    "sub_context": "<P> Bob wrote it . </P>",
    "sub_answer": ["Bob"],
}


def tiny_lm(words=None, seed=0):
    """A word-level tokenizer and a tiny random Llama over it."""
    base = ["[PAD]", "[UNK]", "[EOS]", "\n", ".", ",", ":", "?", "Context", "Question", "Answer"]
    words = sorted(set(words or []) - set(base))
    vocab = {w: i for i, w in enumerate(base + words)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        pad_token="[PAD]",
        unk_token="[UNK]",
        eos_token="[EOS]",
        padding_side="left",
    )
    model = tiny_llama(len(vocab), seed, initializer_range=0.2, eos_token_id=2)
    return model, tok
