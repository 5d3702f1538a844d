"""Users. The same table exists in every schema: operators in public, staff in each agency.

A staff member therefore exists only inside their agency's schema; the same e-mail at two
agencies is two unrelated users, and a session or API token of one agency means nothing at
another, because the other schema has no such row.
"""
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .roles import Role, role_can


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, **fields):
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password) if password else user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **fields):
        fields.update(is_operator=True, is_superuser=True, is_staff=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(_("e-mail"), unique=True)
    full_name = models.CharField(_("full name"), max_length=150)
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, blank=True)
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    # Operators exist only in the public schema; the console checks this flag as well.
    is_operator = models.BooleanField(default=False)
    is_staff = models.BooleanField(default=False)  # Django admin site access; unused by the product
    date_joined = models.DateTimeField(_("joined"), default=timezone.now)
    invited_at = models.DateTimeField(_("invited"), null=True, blank=True)

    objects = UserManager()
    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["full_name", "email"]

    def __str__(self):
        return self.full_name or self.email

    def can(self, cap: str) -> bool:
        return self.is_active and role_can(self.role, cap)

    @property
    def invitation_pending(self) -> bool:
        return self.is_active and not self.has_usable_password()


class ApiToken(models.Model):
    """A named, scoped API token of one user, in that user's schema (an agency's or the operators').

    Only a SHA-256 of the secret is stored (the secret is 200+ random bits, so a plain hash is
    enough: nothing to guess); the first characters (``prefix``) identify it on pages. Revoked
    tokens are kept for the record; a deactivated person's tokens are deleted (accounts.services)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("user"))
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("begins with"), max_length=12)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = ArrayField(models.CharField(max_length=40), default=list, blank=True, verbose_name=_("scopes"))
    expires_at = models.DateTimeField(_("expires"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("created by"))
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                   verbose_name=_("revoked by"))

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and not self.is_expired
