"""``python -m ir_core ...`` runs the ``ir`` command line (same as the console script)."""

from ir_core.cli import main

raise SystemExit(main())
