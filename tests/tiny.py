"""Tiny models and data rows shared by several test modules (no files, no network)."""

from __future__ import annotations

import torch

MEMO_CSV = (
    "prompt,classes,answer_index\n"
    '"Write a quote that ends in the word ""heavy"": Absence makes the heart grow","[\' heavy.\', \' fonder.\']",0\n'
    "\"Translate into English.\nline two\nto:\nThe absent are always in the\",\"[' wrong.', ' background.']\",1\n"
)


def tiny_lm(words=None, seed=0):
    """A word-level tokenizer and a tiny random Llama over it (no files, no network)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

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
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        initializer_range=0.2,
        pad_token_id=0,
        eos_token_id=2,
        bos_token_id=None,
    )
    return LlamaForCausalLM(cfg).eval(), tok


NQ_ROW = {
    "question": "who wrote it",
    "org_context": "<P> Ann wrote it . </P>",
    "org_answer": ["Ann"],
    "sub_context": "<P> Bob wrote it . </P>",
    "sub_answer": ["Bob"],
}
