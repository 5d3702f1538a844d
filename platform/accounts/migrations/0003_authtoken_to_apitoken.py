"""Existing DRF tokens become named tokens: the same secret keeps working (stored now as its
SHA-256), with the scopes of the holder's role and 90 days to run; the clear-text rows are deleted.

Expand step: the ``authtoken_token`` table itself stays until the next release drops the app."""
import hashlib
from datetime import timedelta

from django.db import migrations
from django.utils import timezone

from accounts.scopes import operator_scopes, role_scopes


def forwards(apps, schema_editor):
    Token = apps.get_model("authtoken", "Token")
    ApiToken = apps.get_model("accounts", "ApiToken")
    expires = timezone.now() + timedelta(days=90)
    for token in Token.objects.select_related("user").iterator():
        user = token.user
        ApiToken.objects.get_or_create(
            key_hash=hashlib.sha256(token.key.encode()).hexdigest(),
            defaults={"user": user, "name": "API token (before named tokens)", "prefix": token.key[:8],
                      "scopes": operator_scopes() if user.is_operator else role_scopes(user.role),
                      "expires_at": expires, "created_at": token.created, "created_by": user})
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_apitoken"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
