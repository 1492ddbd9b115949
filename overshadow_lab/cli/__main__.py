from overshadow_lab.cli import main

raise SystemExit(main())
