"""Staff management by agency admins: invite (real SMTP), accept, re-role, deactivate."""
import re

import pytest
from django.contrib.sessions.models import Session
from django_tenants.utils import tenant_context

from accounts.models import ApiToken, User
from accounts.tasks import send_invitation

from .conftest import staff

pytestmark = pytest.mark.django_db


def test_admin_invites_by_api_and_the_email_arrives_over_smtp(api_client, alpha, mailbox, django_capture_on_commit_callbacks):
    response = api_client("alpha", "admin").post("/api/v1/staff/", {
        "email": "Xiao.Li@Alpha.test", "full_name": "李晓", "role": "sales", "language": "zh-hans"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["invitation_pending"] is True and response.json()["email"] == "xiao.li@alpha.test"
    with tenant_context(alpha):
        user = User.objects.get(email="xiao.li@alpha.test")
        send_invitation.apply(args=[user.pk]).get()  # the worker's code path, run here to see uncommitted rows
    [message] = mailbox
    assert message["To"] == "xiao.li@alpha.test"
    body = message.get_payload(decode=True).decode()
    assert "李晓" in body and "Alpha Travel" in body
    link = re.search(r"http://alpha\.localhost:8000(/accounts/invitation/\S+/)", body).group(1)

    client = api_client(None, on="alpha.localhost")
    page = client.get(link, follow=True)
    assert page.status_code == 200
    set_url = page.redirect_chain[-1][0] if page.redirect_chain else link
    response = client.post(set_url, {"new_password1": "Lantern-Harbour-42", "new_password2": "Lantern-Harbour-42"})
    assert response.status_code == 302
    assert client.post("/api/v1/auth/token/", {"username": "xiao.li@alpha.test", "password": "Lantern-Harbour-42"}).status_code == 200
    assert client.get(link, follow=True).context["validlink"] is False  # one use only


def test_duplicate_email_is_a_field_error(api_client):
    response = api_client("alpha", "admin").post("/api/v1/staff/", {
        "email": "SALES@alpha.test", "full_name": "Dup", "role": "sales"}, format="json")
    assert response.status_code == 400
    assert "already on the staff" in response.json()["error"]["fields"]["email"][0]


def test_same_email_may_work_at_two_agencies(api_client):
    # People are per agency: a colleague of bravo can also be invited at alpha.
    response = api_client("alpha", "admin").post("/api/v1/staff/", {
        "email": "sales@bravo.test", "full_name": "Moonlighter", "role": "sales"}, format="json")
    assert response.status_code == 201


def test_invite_page_shows_field_errors(page_client):
    response = page_client("alpha", "admin").post("/staff/invite/", {"full_name": "", "email": "nope", "role": "pilot",
                                                                     "language": "en"}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400
    for field in (b'data-field="full_name"', b'data-field="email"', b'data-field="role"'):
        assert field in response.content


def test_agency_keeps_one_active_admin(api_client, alpha):
    admin = staff(alpha, "admin")
    client = api_client("alpha", "admin")
    response = client.patch(f"/api/v1/staff/{admin.pk}/", {"role": "sales"}, format="json")
    assert response.status_code == 400 and "own admin rights" in response.json()["error"]["fields"]["role"][0]
    with tenant_context(alpha):
        User.objects.filter(role="admin").exclude(pk=admin.pk).update(role="manager")
    response = client.patch(f"/api/v1/staff/{admin.pk}/", {"is_active": False}, format="json")
    assert response.status_code == 400


def test_deactivation_signs_the_person_out_everywhere(api_client, page_client, alpha):
    victim = staff(alpha, "sales")
    page = page_client("alpha", "sales")
    token_client = api_client("alpha", "sales")
    assert page.get("/").status_code == 200 and token_client.get("/api/v1/me/").status_code == 200
    response = api_client("alpha", "admin").patch(f"/api/v1/staff/{victim.pk}/", {"is_active": False}, format="json")
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert page.get("/").status_code == 302
    assert token_client.get("/api/v1/me/").status_code == 401
    with tenant_context(alpha):
        assert not ApiToken.objects.filter(user=victim).exists()
        assert not any(s.get_decoded().get("_auth_user_id") == str(victim.pk) for s in Session.objects.all())


def test_re_role_from_the_page(page_client, alpha):
    victim = staff(alpha, "service")
    response = page_client("alpha", "admin").post(f"/staff/{victim.pk}/", {"full_name": "Served", "role": "finance",
                                                                          "is_active": "on"})
    assert response.status_code == 302
    with tenant_context(alpha):
        assert User.objects.get(pk=victim.pk).role == "finance"


def test_language_choice_is_remembered(page_client, alpha):
    client = page_client("alpha", "sales")
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    with tenant_context(alpha):
        assert User.objects.get(email="sales@alpha.test").language == "zh-hans"
    assert "工作台".encode() in client.get("/").content


def test_search_finds_staff_by_chinese_and_latin_name(page_client, alpha):
    with tenant_context(alpha):
        User.objects.create_user("wang@alpha.test", full_name="王小明 Wang Xiaoming", role="sales")
    client = page_client("alpha", "manager")
    for query in ("小明", "xiaoming"):
        response = client.get(f"/search/?q={query}", HTTP_HX_REQUEST="true")
        assert "王小明".encode() in response.content, query


def test_password_reset_mail_links_to_the_agency_host(page_client, mailbox):
    client = page_client(None, on="alpha.localhost")
    client.post("/accounts/password/reset/", {"email": "finance@alpha.test"})
    [message] = mailbox
    assert "http://alpha.localhost/accounts/password/reset/" in message.get_payload()
    # an address of another agency gets no mail here
    client.post("/accounts/password/reset/", {"email": "finance@bravo.test"})
    assert len(mailbox) == 1


def test_pages_follow_the_agency_language_until_the_person_chooses(page_client, alpha):
    from tenants.services import agency_update_settings

    agency_update_settings(agency=alpha, actor="test", language="zh-hans")
    with tenant_context(alpha):
        User.objects.filter(email="service@alpha.test").update(language="")
    client = page_client("alpha", "service")
    assert "工作台".encode() in client.get("/", HTTP_ACCEPT_LANGUAGE="en").content
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert b"Dashboard" in client.get("/").content


def test_passwords_are_long_not_composed_and_not_common(page_client):
    """ASVS 6.2 (docs/security.md): at least 10 characters, common and all-digit ones refused with a
    field error, no rule on character classes, and long passphrases (64+ characters) accepted."""
    from .conftest import password_for

    client = page_client("alpha", "sales")
    old = password_for("alpha", "sales")
    for weak, reason in (("short-1", "too short"), ("password123", "too common"), ("31415926535897", "entirely numeric")):
        response = client.post("/accounts/password/change/",
                               {"old_password": old, "new_password1": weak, "new_password2": weak})
        assert response.status_code == 200, weak
        assert reason in " ".join(response.context["form"].errors["new_password2"]), weak
    passphrase = "the lantern on the harbour wall burns all night long for the boats " * 2
    response = client.post("/accounts/password/change/",
                           {"old_password": old, "new_password1": passphrase, "new_password2": passphrase})
    assert response.status_code == 302
