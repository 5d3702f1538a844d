"""Session records and known devices, per schema like the users and sessions they describe.

``SessionRecord`` is the bookkeeping behind the sessions list (Django's own session row holds only
a key, data and expiry); ``KnownDevice`` is a browser that signed in as a user before (its id in a
long-lived signed cookie), so that a sign-in from any other browser mails the user.
"""
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class KnownDevice(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="known_devices")
    # A random id, kept by the browser in the signed ``caravan_device`` cookie.
    device_id = models.CharField(max_length=64)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "device_id"], name="mfa_known_device_unique")]


class SessionRecord(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="session_records")
    session_key = models.CharField(max_length=40, unique=True)
    device = models.CharField(_("device"), max_length=200, blank=True)  # read from the user agent
    address = models.CharField(_("address"), max_length=64, blank=True)  # as our own proxies saw it
    first_seen = models.DateTimeField(_("first seen"), default=timezone.now)
    last_seen = models.DateTimeField(_("last seen"), default=timezone.now)
    # The sign-in came from a browser this user had not used before: the user is mailed once.
    new_device = models.BooleanField(default=False)
    mailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen"]
        indexes = [models.Index(fields=["user", "-last_seen"], name="mfa_session_user_seen")]
