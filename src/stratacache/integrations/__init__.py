"""Invalidate cache entries when database rows change: one module per ORM.

* :mod:`stratacache.integrations.sqlalchemy` — ``CacheInvalidator`` hooks SQLAlchemy
  2.x session events (sync and async sessions); needs ``stratacache[sqlalchemy]``.
* :mod:`stratacache.integrations.django` — ``CacheInvalidator`` connects Django's
  ``post_save``, ``post_delete`` and ``m2m_changed`` signals; needs ``stratacache[django]``.

Both share one registration API (``register(model, keys=..., tags=...)``) and drop
entries only after the transaction commits. Import the submodule you need: this
package imports neither SQLAlchemy nor Django.
"""

__all__: list[str] = []
