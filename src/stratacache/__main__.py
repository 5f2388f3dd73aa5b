"""``python -m stratacache``: the command line (see :mod:`stratacache.cli`)."""

from stratacache.cli import main

main()
