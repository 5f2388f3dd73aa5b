"""Skip the integration tests whose ORM is not installed (they are optional extras)."""

from __future__ import annotations

import importlib.util

collect_ignore_glob = [
    f"test_{name}.py" for name in ("django", "sqlalchemy") if importlib.util.find_spec(name) is None
]
