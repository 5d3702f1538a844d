"""The sessions list (accounts.mfa): what it shows, signing one or all other sessions out, an admin
signing a staff member out everywhere, the new-device mail over real SMTP, and the agency fence."""
import re
from datetime import timedelta
from email.header import decode_header, make_header

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.mfa.models import KnownDevice, SessionRecord
from accounts.mfa.services import DEVICE_COOKIE
from accounts.mfa.tasks import new_device_mail
from accounts.models import User
from tests.conftest import password_for

pytestmark = pytest.mark.django_db

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.1 Mobile/15E148 Safari/604.1")


def browser(slug: str, agent: str, address: str = "203.0.113.7") -> Client:
    return Client(HTTP_HOST=f"{slug}.localhost", HTTP_USER_AGENT=agent, REMOTE_ADDR=address)


def sign_in(client: Client, slug: str, role: str):
    response = client.post("/accounts/login/", {"username": f"{role}@{slug}.test", "password": password_for(slug, role)})
    assert response.status_code == 302 and response["Location"] == "/", response
    return response


def records(agency, role: str):
    with tenant_context(agency):
        found = list(SessionRecord.objects.filter(user__email=f"{role}@{agency.slug}.test").order_by("first_seen"))
    connection.set_schema_to_public()
    return found


def test_the_list_shows_each_session_with_device_and_address(alpha):
    desk, phone = browser("alpha", FIREFOX, "198.51.100.4"), browser("alpha", IPHONE, "203.0.113.9")
    sign_in(desk, "alpha", "sales")
    sign_in(phone, "alpha", "sales")
    page = desk.get("/accounts/security/").content.decode()
    rows = re.findall(r'<tr data-test="session-row">(.*?)</tr>', page, re.S)
    assert len(rows) == 2
    text = " ".join(rows)
    assert "Firefox 121 · Windows 10" in text and "Mobile Safari 17 · iOS 17.1" in text
    assert "198.51.100.4" in text and "203.0.113.9" in text
    assert page.count('data-test="this-session"') == 1
    this_row = next(r for r in rows if "this-session" in r)
    assert "Firefox" in this_row


def test_address_is_the_one_our_proxy_saw(alpha, settings):
    settings.PROXY_COUNT = 1
    client = Client(HTTP_HOST="alpha.localhost", HTTP_USER_AGENT=FIREFOX, REMOTE_ADDR="10.0.0.2",
                    HTTP_X_FORWARDED_FOR="6.6.6.6, 192.0.2.44")
    sign_in(client, "alpha", "finance")
    [record] = records(alpha, "finance")
    assert record.address == "192.0.2.44"  # not the 6.6.6.6 the client wrote itself


def test_last_seen_is_written_at_most_every_few_minutes(alpha):
    client = browser("alpha", FIREFOX)
    sign_in(client, "alpha", "sales")
    client.get("/")
    [record] = records(alpha, "sales")
    with tenant_context(alpha):
        SessionRecord.objects.filter(pk=record.pk).update(last_seen=record.last_seen - timedelta(hours=1))
    connection.set_schema_to_public()
    client.get("/customers/")
    assert records(alpha, "sales")[0].last_seen == record.last_seen - timedelta(hours=1)  # not written again yet
    with tenant_context(alpha):
        session = client.session
        session["mfa_seen"] -= 600
        session.save()
    connection.set_schema_to_public()
    client.get("/customers/")
    assert records(alpha, "sales")[0].last_seen > timezone.now() - timedelta(minutes=1)


def test_sign_out_one_and_everywhere_else(alpha):
    desk, phone, laptop = browser("alpha", FIREFOX), browser("alpha", IPHONE), browser("alpha", FIREFOX)
    for client in (desk, phone, laptop):
        sign_in(client, "alpha", "service")
    phone_record = [r for r in records(alpha, "service") if "iOS" in r.device][0]

    assert desk.post("/accounts/security/", {"action": "signout", "session": phone_record.pk}).status_code == 302
    assert phone.get("/")["Location"].startswith("/accounts/login/")
    assert laptop.get("/").status_code == 200

    desk.post("/accounts/security/", {"action": "signout_others"})
    assert laptop.get("/")["Location"].startswith("/accounts/login/")
    assert desk.get("/").status_code == 200
    assert len(records(alpha, "service")) == 1


def test_admin_signs_a_staff_member_out_everywhere(alpha, page_client):
    a, b = browser("alpha", FIREFOX), browser("alpha", IPHONE)
    sign_in(a, "alpha", "call_center")
    sign_in(b, "alpha", "call_center")
    with tenant_context(alpha):
        member = User.objects.get(email="call_center@alpha.test")
    connection.set_schema_to_public()
    assert page_client("alpha", "sales").post(f"/staff/{member.pk}/security/", {"action": "signout"}).status_code == 403
    assert a.get("/").status_code == 200
    response = page_client("alpha", "admin").post(f"/staff/{member.pk}/security/", {"action": "signout"})
    assert response.status_code == 302
    assert a.get("/")["Location"].startswith("/accounts/login/")
    assert b.get("/")["Location"].startswith("/accounts/login/")


def test_a_new_device_sign_in_is_mailed_once(alpha, mailbox):
    with tenant_context(alpha):
        User.objects.filter(email="finance@alpha.test").update(language="en")
        KnownDevice.objects.filter(user__email="finance@alpha.test").delete()
    connection.set_schema_to_public()
    client = browser("alpha", FIREFOX, "198.51.100.23")
    response = sign_in(client, "alpha", "finance")
    assert DEVICE_COOKIE in response.cookies and response.cookies[DEVICE_COOKIE]["httponly"]
    [record] = records(alpha, "finance")
    assert record.new_device
    with tenant_context(alpha):
        assert new_device_mail.apply(args=[record.pk]).get() is True  # the worker's code path
        assert new_device_mail.apply(args=[record.pk]).get() is False  # a retry sends nothing twice
    connection.set_schema_to_public()
    [message] = mailbox
    assert message["To"] == "finance@alpha.test"
    assert "New sign-in to Alpha Travel" in str(make_header(decode_header(message["Subject"])))
    body = message.get_payload(decode=True).decode()
    assert "Firefox 121 · Windows 10" in body and "198.51.100.23" in body
    assert "http://alpha.localhost:8000/accounts/security/" in body

    # The same browser (its cookie) signing in again is known: no mail.
    client.post("/accounts/logout/")
    sign_in(client, "alpha", "finance")
    latest = records(alpha, "finance")[-1]
    assert latest.pk != record.pk and not latest.new_device
    with tenant_context(alpha):
        assert new_device_mail.apply(args=[latest.pk]).get() is False
    assert len(mailbox) == 1


def test_mail_in_the_users_language(alpha, mailbox):
    with tenant_context(alpha):
        User.objects.filter(email="sales@alpha.test").update(language="zh-hans")
    connection.set_schema_to_public()
    client = browser("alpha", IPHONE)
    sign_in(client, "alpha", "sales")
    [record] = records(alpha, "sales")
    with tenant_context(alpha):
        new_device_mail.apply(args=[record.pk]).get()
    [message] = mailbox
    body = message.get_payload(decode=True).decode()
    assert "Mobile Safari 17 · iOS 17.1" in body or "iOS" in body
    assert "Asia/Shanghai" in body  # the agency's time zone names the time


def test_a_cookie_from_another_agency_is_a_new_device(alpha, bravo):
    """Device ids are remembered per user in the user's schema: alpha's cookie means nothing at bravo."""
    a = browser("alpha", FIREFOX)
    cookie = sign_in(a, "alpha", "sales").cookies[DEVICE_COOKIE].value
    b = browser("bravo", FIREFOX)
    b.cookies[DEVICE_COOKIE] = cookie
    sign_in(b, "bravo", "sales")
    [record] = records(bravo, "sales")
    assert record.new_device


def test_fence_sessions_of_another_agency_cannot_be_ended(alpha, bravo):
    alpha_sales = browser("alpha", FIREFOX)
    sign_in(alpha_sales, "alpha", "sales")
    [alpha_record] = records(alpha, "sales")
    bravo_sales = browser("bravo", FIREFOX)
    sign_in(bravo_sales, "bravo", "sales")
    # Bravo's sales names alpha's record id on bravo's host: no such session there.
    bravo_sales.post("/accounts/security/", {"action": "signout", "session": alpha_record.pk})
    bravo_sales.post("/accounts/security/", {"action": "signout_others"})
    assert alpha_sales.get("/").status_code == 200
    # Alpha's session cookie does not show alpha's sessions on bravo's host.
    alpha_sales.defaults["HTTP_HOST"] = "bravo.localhost"
    assert alpha_sales.get("/accounts/security/")["Location"].startswith("/accounts/login/")
    # Bravo's list shows only bravo's own session.
    page = bravo_sales.get("/accounts/security/").content.decode()
    assert page.count('data-test="session-row"') == 1
