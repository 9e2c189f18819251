"""``python -m pgfast``: the same command line as the ``pgfast`` script (pgfast.cli)."""
from .cli import main

raise SystemExit(main())
