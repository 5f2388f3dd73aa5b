"""The test app's configuration (its label keeps its tables apart from anything else)."""

from __future__ import annotations

from django.apps import AppConfig


class DjangoAppConfig(AppConfig):  # type: ignore[misc]  # Django ships no type information
    name = "integrations.django_app"
    label = "stratacache_test"
    default_auto_field = "django.db.models.AutoField"
