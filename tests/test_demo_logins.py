"""`make run`'s demo log-ins (issue 20): every demo role of every demo agency signs in with the
password `make run` prints, on a fresh var/ and on one seeded by an older Caravan."""
import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from accounts.models import User
from accounts.roles import Role
from tenants.management.commands.seed_demo import DEMO_AGENCIES, ensure_demo_staff

PRINTED = "demo-Pass-printed-by-make-run"
SLUG = "demo-alpha"  # the demo staff's e-mails, in alpha's schema beside its own staff


def _staff():
    return DEMO_AGENCIES[1][4]  # lotus: English names, every role


def _signs_in(email: str, password: str) -> bool:
    response = Client(HTTP_HOST="alpha.localhost").post("/accounts/login/", {"username": email, "password": password})
    return response.status_code == 302 and not response["Location"].startswith("/accounts/login")


@pytest.mark.django_db
def test_every_demo_role_signs_in_with_the_printed_password(alpha):
    assert {role for role, _, _ in _staff()} == set(Role.values)
    with tenant_context(alpha):
        users = ensure_demo_staff(_staff(), slug=SLUG, language="en", password=PRINTED)
    connection.set_schema_to_public()
    assert len(users) == 6
    for user in users:
        assert _signs_in(user.email, PRINTED), user.email
        assert not _signs_in(user.email, "not-the-password"), user.email


@pytest.mark.django_db
def test_reseeding_mends_demo_users_an_older_seeding_left_without_a_password(alpha):
    """Older seeding made the non-admin demo users with an empty password (which Django counts as
    usable, so it was never set): seeding again on that var/ gives them the printed one; a demo user
    who changed theirs keeps it."""
    with tenant_context(alpha):
        for role, full_name, local in _staff():
            User.objects.get_or_create(email=f"{local}@{SLUG}.test",
                                       defaults={"full_name": full_name, "role": role, "language": "en"})
        assert User.objects.get(email=f"sales@{SLUG}.test").password == ""
        unusable = User.objects.get(email=f"service@{SLUG}.test")
        unusable.set_unusable_password()
        unusable.save()
        changed = User.objects.get(email=f"finance@{SLUG}.test")
        changed.set_password("my-own-Pass-42")
        changed.save()
        ensure_demo_staff(_staff(), slug=SLUG, language="en", password=PRINTED)
    connection.set_schema_to_public()
    for role, _, local in _staff():
        email = f"{local}@{SLUG}.test"
        if local == "finance":
            assert _signs_in(email, "my-own-Pass-42") and not _signs_in(email, PRINTED)
        else:
            assert _signs_in(email, PRINTED), email
