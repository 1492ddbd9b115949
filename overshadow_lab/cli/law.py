"""``overshadow-lab law``: not implemented yet (see the open issues)."""
