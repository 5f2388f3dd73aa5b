"""The ``stratacache`` command line: inspect, invalidate, warm, check and serve a cache.

Needs the ``cli`` extra (``pip install 'stratacache[cli]'``: Typer and Rich); ``serve``
and ``demo`` also need ``web``. Run ``stratacache --help``, or ``python -m stratacache``.

Exit codes: 0 ok; 1 done but needs attention (doctor findings, keys that failed to
warm, a failed benchmark); 2 usage or configuration error; 3 Redis (or the
``--server``) unreachable.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

_EXTRA = frozenset({"typer", "rich", "click"})


def main(argv: Sequence[str] | None = None) -> None:
    """The console script: run the Typer app (``argv`` defaults to ``sys.argv[1:]``)."""
    try:
        from ._app import app
    except ImportError as exc:  # the extra is missing: say so instead of a traceback
        missing = (exc.name or "").partition(".")[0]
        if missing not in _EXTRA:
            raise
        sys.stderr.write(
            f"stratacache: the command line needs the 'cli' extra ({missing} is missing): "
            "pip install 'stratacache[cli]'\n"
        )
        raise SystemExit(2) from None
    app(args=None if argv is None else list(argv), prog_name="stratacache")
