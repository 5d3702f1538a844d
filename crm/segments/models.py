"""Saved segments (R-CAMP-1): a named filter definition, re-evaluated whenever it is used."""
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Segment(models.Model):
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    # The filters, as validated by ``crm.segments.definition`` (a JSON document, see docs/segments.md).
    definition = models.JSONField(_("filters"), default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    # The count when last evaluated (a hint for lists; campaigns always re-evaluate).
    last_count = models.PositiveIntegerField(null=True, blank=True, editable=False)
    last_counted_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["name"], name="segments_name_unique")]

    def __str__(self):
        return self.name
