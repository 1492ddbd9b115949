"""Tests of overshadow_lab.lab.prefixes: rows share a group exactly when they share a prefix."""

import pytest
import torch

from overshadow_lab.lab.prefixes import identity_groups, prefix_groups


@pytest.mark.parametrize("shape,vocab", [((64, 5), 3), ((17, 9), 2), ((1, 4), 10), ((8, 1), 4)])
def test_groups_are_the_distinct_prefixes(shape, vocab):
    ids = torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(0))
    groups = prefix_groups(ids)
    batch, length = shape
    prefixes = [tuple(ids[b, : t + 1].tolist()) for b in range(batch) for t in range(length)]
    assert groups.rows == batch * length
    assert groups.distinct == len(set(prefixes))
    for r, p in enumerate(prefixes):
        first = int(groups.first[groups.inverse[r]])
        assert prefixes[first] == p and first == prefixes.index(p)  # its prefix's first row
    for r in range(len(prefixes)):
        for s in range(r):
            assert (groups.inverse[r] == groups.inverse[s]) == (prefixes[r] == prefixes[s])


def test_the_lab_corpus_repeats_prefixes():
    """The saving the module promises: a lab batch has fewer distinct prefixes than positions."""
    from overshadow_lab.lab.data import make_knowledge_sets

    seqs = torch.tensor(make_knowledge_sets(P=5, L=5, seed=0).train_sequences)
    batch = seqs[torch.randperm(len(seqs), generator=torch.Generator().manual_seed(0))[:64]]
    groups = prefix_groups(batch[:, :-1])
    assert groups.distinct < 0.9 * groups.rows


def test_identity_groups_and_bad_input():
    g = identity_groups(4)
    assert g.distinct == 4 and g.inverse.tolist() == g.first.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match=r"\[batch, length\]"):
        prefix_groups(torch.zeros(2, 3, 4, dtype=torch.long))
