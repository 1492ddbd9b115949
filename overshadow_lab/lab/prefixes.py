"""Positions of a batch that share their whole prefix, so the output layer runs once for them.

In a causal language model the hidden state at position ``t`` of a sequence depends only on
the tokens ``0..t`` (with no padding and no dropout, as in the lab's lean forward). The lab's
synthetic statements share long prefixes: every paraphrase of a fact starts with the same
tokens, and in a batch of 64 of them about a fifth of all positions repeat a prefix seen
earlier in the batch (0.74-0.81 distinct prefixes at each of the first four positions for
P = 2..25, L = 5; the last input position is always distinct).
Those positions have the same hidden state, so the same logits and probabilities; only their
targets differ. :func:`prefix_groups` finds them, and the stacked trainer's fused output layer
(:class:`~overshadow_lab.lab.stacked.StackedLinearCrossEntropy`) computes the logits, the
softmax and the products back through the weights once per distinct prefix. The result is the
same loss and the same gradients, up to float rounding: for a group of positions with
probabilities ``p`` and targets ``t_i``, the gradient of the summed loss with respect to the
logits is ``n p - sum_i onehot(t_i)``, and the one-hot part never needs the logits.

Measured on the lab's tiny model (``benchmarks/RESULTS.md``): a stack of 4 on one thread took
about 6 % less per step. ``train_model``'s output layer (one model, two threads) gained nothing
from it (the matrix products it saves are already split over both cores, and the gathers it
adds are not), so it does not use it.

Why not ``torch.unique(dim=0)`` once per position: that is one sort per position; here one
lexicographic sort of the rows gives every position's groups at once (two rows share the prefix
of length ``t + 1`` exactly when their first difference is past ``t``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class PrefixGroups:
    """Distinct prefixes of a ``[B, T]`` batch, rows counted ``b * T + t`` (flattened order).

    ``inverse[r]`` is the distinct prefix of row ``r``; ``first[u]`` is the first row with
    prefix ``u`` (the one whose hidden state stands for all of them); ``distinct`` is their
    number. Prefixes are numbered position by position, in sorted order within a position.
    """

    inverse: torch.Tensor
    first: torch.Tensor
    distinct: int

    @property
    def rows(self) -> int:
        return len(self.inverse)


def prefix_groups(ids: torch.Tensor) -> PrefixGroups:
    """The distinct prefixes of every position of an unpadded ``[B, T]`` batch of token ids."""
    if ids.ndim != 2:
        raise ValueError(f"prefix_groups needs a [batch, length] tensor of ids, got {ids.shape}")
    x = ids.detach().cpu().numpy()
    batch, length = x.shape
    order = np.lexsort(x.T[::-1])  # rows sorted by their first token, then the second, ...
    ranked = x[order]
    differ = ranked[1:] != ranked[:-1]
    # the first position where each sorted row differs from the one before (length: nowhere)
    first_diff = np.where(differ.any(axis=1), differ.argmax(axis=1), length)
    # sorted row j starts a new prefix at position t when it differs at or before t
    starts = first_diff[None, :] <= np.arange(length)[:, None]
    sorted_ids = np.zeros((length, batch), dtype=np.int64)
    np.cumsum(starts, axis=1, out=sorted_ids[:, 1:])
    per_position = sorted_ids[:, -1] + 1
    offsets = np.zeros(length, dtype=np.int64)
    np.cumsum(per_position[:-1], out=offsets[1:])
    numbered = np.empty((length, batch), dtype=np.int64)
    numbered[:, order] = sorted_ids + offsets[:, None]
    inverse = numbered.T.reshape(-1)
    distinct = int(per_position.sum())
    _, first = np.unique(inverse, return_index=True)  # each prefix's first row
    device = ids.device
    return PrefixGroups(
        inverse=torch.from_numpy(inverse).to(device),
        first=torch.from_numpy(first).to(device),
        distinct=distinct,
    )


def identity_groups(rows: int, device=None) -> PrefixGroups:
    """Every row its own group (for hidden states that need not agree, e.g. under dropout)."""
    every = torch.arange(rows, device=device)
    return PrefixGroups(inverse=every, first=every, distinct=rows)
