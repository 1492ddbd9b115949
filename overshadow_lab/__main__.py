"""``python -m overshadow_lab`` runs the command line."""

from overshadow_lab.cli import main

raise SystemExit(main())
