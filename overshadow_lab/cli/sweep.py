"""``overshadow-lab sweep``: not implemented yet (see the open issues)."""
