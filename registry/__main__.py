"""``python -m registry`` runs the modelreg CLI."""

from registry.cli import main

raise SystemExit(main())
