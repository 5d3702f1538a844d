"""API tokens: issue, authenticate, revoke (the one path for the profile page, the staff page, the
API and ``POST auth/token/``).

A token's secret is ``cvn_`` and 36 URL-safe random characters (216 bits), shown once; the database
keeps its SHA-256 and its first 8 characters. ``last_used_at`` is written at most once a minute
per token (one conditional UPDATE), so authenticating costs one indexed SELECT.
"""
import hashlib
import secrets
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from caravan.db.prepared import execute_prepared

from . import scopes as scope_rules
from .models import ApiToken, User
from .roles import Cap

PREFIX = "cvn_"
SHOWN = 8  # characters of the secret kept and shown to tell tokens apart
TOUCH_EVERY = timedelta(minutes=1)
EXPIRY_CHOICES = (7, 30, 90, 180, 365)  # days a token may be given on the profile page


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(*, user: User, name: str, scopes: list[str], days: int | None = None,
                 created_by: User | None = None) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns it and its secret (shown once, never stored)."""
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = [_("Give the token a name, e.g. the program that will use it.")]
    try:
        scopes = scope_rules.valid_scopes(scopes or [], operator=user.is_operator)
    except ValueError as exc:
        errors["scopes"] = [_("Unknown scope: %(scopes)s.") % {"scopes": exc}]
    else:
        if not scopes:
            errors["scopes"] = [_("Choose at least one scope.")]
    days = settings.API_TOKEN_DAYS if days is None else days
    if not isinstance(days, int) or not 1 <= days <= max(EXPIRY_CHOICES):
        errors["days"] = [_("A token lasts from 1 to %(max)s days.") % {"max": max(EXPIRY_CHOICES)}]
    if not user.is_active:
        errors["user"] = [_("This person is deactivated.")]
    if errors:
        raise ValidationError(errors)
    secret = PREFIX + secrets.token_urlsafe(27)  # 36 characters
    now = timezone.now()
    token = ApiToken.objects.create(user=user, name=name[:100], scopes=scopes, prefix=secret[:SHOWN],
                                    key_hash=_hash(secret), created_at=now, expires_at=now + timedelta(days=days),
                                    created_by=created_by or user)
    return token, secret


def token_for_sign_in(*, user: User) -> tuple[ApiToken, str]:
    """The token ``POST auth/token/`` hands out for a checked password: the role's scopes, the default
    expiry. (A second factor, when required, is checked before this is called.)"""
    granted = scope_rules.operator_scopes() if user.is_operator else scope_rules.role_scopes(user.role)
    return token_create(user=user, name=_("API sign-in"), scopes=granted, created_by=user)


def token_authenticate(secret: str) -> ApiToken | None:
    """The live token with this secret in the active schema, its user loaded; None otherwise."""
    if not secret or len(secret) > 200:
        return None
    token = _token_and_user(_hash(secret))
    if token is None or not token.is_live or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - TOUCH_EVERY)).update(last_used_at=now)
        token.last_used_at = now
    return token


def _token_and_user(key_hash: str) -> ApiToken | None:
    """``ApiToken.objects.select_related("user").get(key_hash=…)`` (None if missing) in one statement
    written once (the ORM compiled that query on every API request, a third of its Python time) and
    prepared once per connection (``caravan.db.prepared``)."""
    sql, token_fields, user_fields = _lookup_sql()
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql, [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    token = ApiToken.from_db(connection.alias, token_fields, row[:len(token_fields)])
    token.user = User.from_db(connection.alias, user_fields, row[len(token_fields):])
    return token


@cache
def _lookup_sql() -> tuple[str, list[str], list[str]]:
    """The lookup's SQL and the attribute names of its columns. Unqualified tables, as the ORM's: the
    active schema's (search_path). No field of either model needs a database converter (a test checks)."""
    qn = connection.ops.quote_name
    tokens, users = ApiToken._meta, User._meta
    columns = [f"t.{qn(f.column)}" for f in tokens.concrete_fields] + [f"u.{qn(f.column)}" for f in users.concrete_fields]
    sql = (f"SELECT {', '.join(columns)} FROM {qn(tokens.db_table)} t "
           f"JOIN {qn(users.db_table)} u ON u.{qn(users.pk.column)} = t.{qn(tokens.get_field('user').column)} "
           f"WHERE t.{qn(tokens.get_field('key_hash').column)} = %s")
    return sql, [f.attname for f in tokens.concrete_fields], [f.attname for f in users.concrete_fields]


def tokens_visible_to(actor: User, *, everyone: bool = False):
    """The actor's own tokens; with ``everyone``, all of the agency's (staff managers only)."""
    tokens = ApiToken.objects.select_related("user", "created_by", "revoked_by")
    if everyone and actor.can(Cap.STAFF_MANAGE):
        return tokens
    return tokens.filter(user=actor)


def token_revoke(*, actor: User, token: ApiToken) -> ApiToken:
    """Revoke one's own token, or (staff managers) anyone's in the agency. Idempotent."""
    if token.user_id != actor.pk and not actor.can(Cap.STAFF_MANAGE) and not actor.is_operator:
        raise ValidationError(_("You can revoke only your own tokens."))
    if token.revoked_at is None:
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now(), revoked_by=actor)
        token.refresh_from_db()
    return token


def tokens_delete_for(user: User) -> int:
    """A deactivated person's tokens go at once (not merely revoked)."""
    return ApiToken.objects.filter(user=user).delete()[0]
