"""Fail-closed access to shared (public-schema) rows that belong to one agency.

Tables of the shared apps (tenants, billing, integrations) hold rows of every agency side by
side. Their models use :class:`AgencyScopedManager` as ``objects``: a query through it is
filtered to the active agency and raises :class:`NoAgencyError` when none is active. Platform
code that really means "all agencies" says so with ``Model.objects.unscoped()``.
"""
from django.db import models

from . import require_agency


class AgencyScopedManager(models.Manager):
    def __init__(self, field: str = "agency"):
        super().__init__()
        self.field = field

    def deconstruct(self):  # keep migrations free of the constructor argument
        return (False, "caravan.tenancy.scoping.AgencyScopedManager", None, (), {"field": self.field})

    def get_queryset(self):
        agency = require_agency()
        return super().get_queryset().filter(**{f"{self.field}_id": agency.pk})

    def unscoped(self):
        """Every agency's rows. For platform code only (operator console, fan-out jobs)."""
        return super().get_queryset()
