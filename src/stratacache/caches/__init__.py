"""The public cache implementations (re-exported from :mod:`stratacache`)."""
