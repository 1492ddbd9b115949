"""``overshadow-lab decode``: not implemented yet (see the open issues)."""
