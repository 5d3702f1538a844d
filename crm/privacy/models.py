"""The access log: who looked at which customer's personal data, when, how and from where. Tenant schema.

Written by one INSERT per access (``services.access_record``), read by admins (``Cap.ACCESS_LOG_VIEW``),
exported with the customer's data, and pruned after ``ACCESS_LOG_RETENTION_DAYS`` by a nightly job.
"""
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.customers.hooks import Seen, SeenVia
from crm.customers.models import Customer


class AccessEntry(models.Model):
    # The kinds of access are the customers core's words: it announces them (crm.customers.hooks.customer_data_seen).
    What = Seen
    Via = SeenVia

    at = models.DateTimeField(_("when"), default=timezone.now)
    # Staff are deactivated, not deleted; no constraint to check on every insert (Django applies SET_NULL).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("who"), null=True, on_delete=models.SET_NULL,
                             related_name="+", db_index=False, db_constraint=False)
    # Empty for an access to many customers at once (the list export: ``detail`` holds its filters).
    customer = models.ForeignKey(Customer, verbose_name=_("customer"), null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="access_entries",
                                 db_index=False, db_constraint=False)
    what = models.CharField(_("what"), max_length=20, choices=What.choices)
    via = models.CharField(_("via"), max_length=10, choices=Via.choices)
    detail = models.CharField(_("detail"), max_length=300, blank=True,
                              help_text=_("Which document (masked), which filters, which endpoint."))
    request_id = models.CharField(_("request id"), max_length=64, blank=True)
    address = models.GenericIPAddressField(_("address"), null=True, blank=True,
                                           help_text=_("The client's address as our own proxies saw it."))

    class Meta:
        verbose_name = _("access log entry")
        verbose_name_plural = _("access log")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-at"], name="privacy_access_customer"),
            models.Index(fields=["user", "-at"], name="privacy_access_user"),
            models.Index(fields=["-at"], name="privacy_access_at"),  # the agency-wide page, and pruning
        ]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.user_id} {self.what} {self.customer_id}"
