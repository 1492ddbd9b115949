"""Tiny random decoders for the decoding tests: a Llama and a GPT-NeoX over 48 tokens.

Two architectures because their caches and positions differ (NeoX: partial rotary embeddings, no
grouped keys); nothing here reads files or the network.
"""

from __future__ import annotations

import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, LlamaConfig, LlamaForCausalLM

VOCAB = 48


def tiny_llama(seed=0):
    """A 2-layer Llama with grouped keys (4 heads, 2 key-value heads)."""
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        initializer_range=0.3,
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=None,
    )
    return LlamaForCausalLM(cfg).eval()


def tiny_neox(seed=0):
    """A 4-layer GPT-NeoX with rotary embeddings on a quarter of each head."""
    torch.manual_seed(seed)
    cfg = GPTNeoXConfig(
        vocab_size=VOCAB,
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


def random_prompts(n=8, seed=1):
    """``n`` prompts of 3 to 9 random token ids (no 0: that is the padding id)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(3, 10, (n,), generator=g).tolist()
    return [torch.randint(1, VOCAB, (k,), generator=g).tolist() for k in lengths]
