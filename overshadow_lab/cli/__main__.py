"""``python -m overshadow_lab.cli`` runs the command line (as does ``python -m overshadow_lab``)."""

from overshadow_lab.cli import main

raise SystemExit(main())
