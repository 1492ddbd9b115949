"""Left padding: the one place that lays out a batch of token-id lists for a decoder.

A decoder-only model continues each row at its last column, so the rows of a batch are padded on
the left: row ``i`` fills the last ``len(seqs[i])`` columns, and the attention mask marks those
columns. Positions then count only the real tokens (:func:`positions`), so a padded row sees the
same positions as the same tokens alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def left_pad(
    seqs: Sequence[Sequence[int]], pad_token_id: int, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, attention_mask)``, both ``(len(seqs), longest)`` long tensors on ``device``:
    each sequence right-aligned after ``pad_token_id``, the mask 1 on its tokens and 0 on the
    padding (an empty sequence is a row of padding)."""
    if not seqs:
        raise ValueError("left_pad needs at least one sequence to lay out")
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), int(pad_token_id), dtype=torch.long, device=device)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        if len(s):
            ids[i, width - len(s) :] = torch.as_tensor(list(s), device=device)
            mask[i, width - len(s) :] = 1
    return ids, mask


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids of a left-padded batch: 0 at each row's first real token, counting only real
    tokens (padding columns get 0; the mask hides them)."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)
