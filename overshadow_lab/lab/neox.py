"""A lean training forward for GPT-NeoX, the architecture of the lab's models.

The lab trains many small models on short, unpadded sequences. For such models the work of a
step is small and the transformers forward spends much of it on generality the lab does not
need: building attention masks, recomputing rotary tables, output bookkeeping, dropout layers
with probability zero. :func:`hidden_states` computes the same function from the same
parameters with plain tensor operations: no mask (causal attention on full rows), rotary tables
computed once per sequence length, and the rotation and the attention in one call of a small C
kernel made for sequences of a few tokens (:mod:`overshadow_lab.lab.short_attention`). Where
that kernel cannot be built, the rotation is one matrix product over every head's query and key
and the attention is torch's ``scaled_dot_product_attention``.

:func:`stacked_hidden_states` computes the same for ``K`` models of one shape at once, their
parameters stacked along a leading dimension (the stacked trainer, :mod:`overshadow_lab.lab.stacked`).

It serves the training loss only (no KV cache, no padding, no attention outputs); evaluation and
generation use the model's own forward. :func:`supported` says whether a model qualifies
(GPT-NeoX, default rotary, exact GELU, no dropout while training); ``tests/lab/test_neox.py`` checks
that the hidden states and every parameter's gradient match the transformers forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from overshadow_lab.lab import short_attention

_TABLES: dict[tuple, tuple[torch.Tensor, ...]] = {}


def supported(model) -> bool:
    """Whether :func:`hidden_states` computes exactly what ``model.base_model`` computes."""
    cfg = getattr(model, "config", None)
    if getattr(cfg, "model_type", None) != "gpt_neox" or not hasattr(model, "gpt_neox"):
        return False
    rope = getattr(cfg, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") != "default":
        return False
    if getattr(cfg, "hidden_act", None) != "gelu":
        return False
    dropout = max(float(getattr(cfg, "hidden_dropout", 0.0)), float(cfg.attention_dropout))
    return not (model.training and dropout > 0)


def _tables(model, length: int, device, dtype):
    """Rotary cosines and sines over a head's query and key side by side, ``[length, 1,
    2 * head]`` (1 and 0 past the rotary dimensions), and the ``[2 * head, 2 * head]`` matrix
    ``R`` with ``qk @ R == rotate_half`` on the rotary dimensions of each (0 elsewhere): one
    head's query and key rotate together as one row of ``2 * head`` numbers. Then the cosines
    and sines of the rotary dimensions alone, ``[length, rotary]``, as the short-attention
    kernel takes them (:mod:`overshadow_lab.lab.short_attention`)."""
    attention = model.gpt_neox.layers[0].attention
    head, rot = attention.head_size, attention.rotary_ndims
    rope = model.config.rope_parameters
    key = (float(rope["rope_theta"]), head, rot, length, device, dtype)
    tables = _TABLES.get(key)
    if tables is None:
        positions = torch.arange(length, device=device)[None]
        probe = torch.zeros((), device=device, dtype=torch.float32)
        with torch.no_grad():
            cos, sin = model.gpt_neox.rotary_emb(probe, position_ids=positions)
        cos_full = torch.ones(length, 2 * head, device=device, dtype=dtype)
        sin_full = torch.zeros(length, 2 * head, device=device, dtype=dtype)
        rotate = torch.zeros(2 * head, 2 * head, device=device, dtype=dtype)
        half = rot // 2
        idx = torch.arange(half, device=device)
        for start in (0, head):  # the query's dimensions, then the key's
            cos_full[:, start : start + rot] = cos[0].to(dtype)
            sin_full[:, start : start + rot] = sin[0].to(dtype)
            rotate[start + idx + half, start + idx] = -1.0  # output j < half takes -x[j + half]
            rotate[start + idx, start + idx + half] = 1.0  # output j >= half takes x[j - half]
        tables = (
            cos_full[:, None],
            sin_full[:, None],
            rotate,
            cos[0].to(dtype).contiguous(),
            sin[0].to(dtype).contiguous(),
        )
        if len(_TABLES) > 64:
            _TABLES.clear()
        _TABLES[key] = tables
    # the local tuple, not a second look-up: another thread (train_stacked's lanes) may clear
    # the cache in between
    return tables


def _rotate(qkv: torch.Tensor, size: int, cos, sin, rotate):
    """Queries and keys rotated, and values, from ``qkv`` ``[..., T, heads, 3 * size]`` (each
    head's query, key and value side by side, as GPT-NeoX lays them out): each ``[..., T,
    heads, size]``. The rotation of all heads' queries and keys is one matrix product over
    rows of ``2 * size`` numbers (strided rows of ``qkv``, no copy), not a product per head and
    position."""
    qk, v = qkv.split([2 * size, size], dim=-1)
    qk = qk * cos + (qk @ rotate) * sin
    q, k = qk.split(size, dim=-1)
    return q, k, v


def _attention(qkv: torch.Tensor, tables: tuple, heads: int, size: int, scale: float):
    """Causal attention of the fused projection ``qkv`` ``[N, T, heads * 3 * size]``, queries
    and keys rotated: ``[N, T, heads * size]``. The short-attention kernel where it applies
    (:func:`overshadow_lab.lab.short_attention.usable`), else the rotation as one product and
    ``scaled_dot_product_attention``: the same up to float rounding."""
    cos, sin, rotate, cos_rot, sin_rot = tables
    if short_attention.usable(qkv, size):
        return short_attention.attention(qkv, cos_rot, sin_rot, heads, size, scale)
    n, length = qkv.shape[0], qkv.shape[1]
    parts = _rotate(qkv.view(n, length, heads, 3 * size), size, cos, sin, rotate)
    q, k, v = (t.transpose(1, 2) for t in parts)
    o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
    return o.transpose(1, 2).reshape(n, length, heads * size)


def hidden_states(model, input_ids: torch.Tensor) -> torch.Tensor:
    """Last hidden states (after the final layer norm) of an unpadded batch, ``[B, T, d]``."""
    if not supported(model):
        raise ValueError(
            f"neox.hidden_states needs a GPT-NeoX model with default rotary, exact GELU and no "
            f"dropout while training; got {type(model).__name__}; use model.base_model instead"
        )
    base, cfg = model.gpt_neox, model.config
    batch, length = input_ids.shape
    d = cfg.hidden_size
    size = base.layers[0].attention.head_size
    heads = d // size
    x = F.embedding(input_ids, base.embed_in.weight)
    tables = _tables(model, length, x.device, x.dtype)

    def mlp(layer, x):
        ln, m = layer.post_attention_layernorm, layer.mlp
        h = F.linear(
            F.layer_norm(x, (d,), ln.weight, ln.bias, ln.eps),
            m.dense_h_to_4h.weight,
            m.dense_h_to_4h.bias,
        )
        return F.linear(F.gelu(h), m.dense_4h_to_h.weight, m.dense_4h_to_h.bias)

    for layer in base.layers:
        att, ln1 = layer.attention, layer.input_layernorm
        h = F.layer_norm(x, (d,), ln1.weight, ln1.bias, ln1.eps)
        qkv = F.linear(h, att.query_key_value.weight, att.query_key_value.bias)
        o = _attention(qkv, tables, heads, size, att.scaling)
        o = F.linear(o, att.dense.weight, att.dense.bias)
        if layer.use_parallel_residual:  # attention and MLP both read the layer's input
            x = x + o + mlp(layer, x)
        else:
            x = x + o
            x = x + mlp(layer, x)
    final = base.final_layer_norm
    return F.layer_norm(x, (d,), final.weight, final.bias, final.eps)


def stacked_hidden_states(
    model, weights: dict[str, torch.Tensor], input_ids: torch.Tensor
) -> torch.Tensor:
    """Last hidden states ``[K, B * T, d]`` of ``K`` stacked GPT-NeoX models on ``[K, B, T]`` ids.

    ``weights`` maps each parameter name of ``model`` (the shape every member shares; its own
    weights are not used) to the stacked ``[K, *shape]`` tensor. The same computation as
    :func:`hidden_states` for every member (``tests/lab/test_stacked.py``); used by the stacked
    trainer (:mod:`overshadow_lab.lab.stacked`).
    """
    w = weights
    base, cfg = model.gpt_neox, model.config
    members, batch, length = input_ids.shape
    d = cfg.hidden_size
    size = base.layers[0].attention.head_size
    heads = d // size
    eps = float(cfg.layer_norm_eps)
    emb = w["gpt_neox.embed_in.weight"]
    which = torch.arange(members, device=input_ids.device)[:, None]
    x = emb[which, input_ids.reshape(members, batch * length)]
    tables = _tables(model, length, x.device, x.dtype)

    def norm(x, name):
        y = F.layer_norm(x, (d,), eps=eps)
        return torch.addcmul(w[name + ".bias"][:, None], y, w[name + ".weight"][:, None])

    def linear(x, name):
        return torch.baddbmm(w[name + ".bias"][:, None], x, w[name + ".weight"].transpose(1, 2))

    def mlp(prefix, x):
        h = linear(norm(x, prefix + "post_attention_layernorm"), prefix + "mlp.dense_h_to_4h")
        return linear(F.gelu(h), prefix + "mlp.dense_4h_to_h")

    for i, layer in enumerate(base.layers):
        prefix = f"gpt_neox.layers.{i}."
        qkv = linear(norm(x, prefix + "input_layernorm"), prefix + "attention.query_key_value")
        qkv = qkv.view(members * batch, length, 3 * d)
        o = _attention(qkv, tables, heads, size, layer.attention.scaling)
        o = linear(o.view(members, batch * length, d), prefix + "attention.dense")
        if layer.use_parallel_residual:
            x = x + o + mlp(prefix, x)
        else:
            x = x + o
            x = x + mlp(prefix, x)
    return norm(x, "gpt_neox.final_layer_norm")
