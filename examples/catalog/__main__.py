"""``python -m examples.catalog [--host H] [--port P]``: run the catalog demo."""

from .server import main

main()
