"""Two-step sign-in (accounts.mfa): TOTP enrolment and sign-in, replay, recovery codes, who must
have it, the gate for half-signed-in sessions, the agency fence, the token endpoint, admin reset,
and passkeys in a real Chromium with a virtual authenticator."""
import re
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential
from django_tenants.utils import schema_context, tenant_context

from accounts.mfa import services
from accounts.models import User
from tenants.models import Agency
from tests.conftest import fresh_totp_code, password_for, staff, totp_code

pytestmark = pytest.mark.django_db

PASSWORD = "Copper-Kettle-Lantern-7"


def client_on(slug: str | None, **extra) -> Client:
    return Client(HTTP_HOST=f"{slug}.localhost" if slug else "localhost", **extra)


def sign_in(client: Client, email: str, password: str = PASSWORD):
    return client.post("/accounts/login/", {"username": email, "password": password})


def code_at(key_hex: str, offset_steps: int = 0, step: int = 30) -> str:
    return f"{totp(bytes.fromhex(key_hex), step=step, drift=offset_steps):06d}"


def new_user(agency, email: str, role: str = "sales") -> User:
    with tenant_context(agency):
        user = User.objects.create_user(email, PASSWORD, role=role, full_name=email.split("@")[0], language="en")
    connection.set_schema_to_public()
    return user


def enrol(client: Client) -> tuple[str, list[str]]:
    """Set up the app through the pages; returns the key (hex) and the recovery codes shown."""
    page = client.get("/accounts/two-step/setup/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "data:image" not in html  # the QR code is inline markup
    key_b32 = re.search(r'data-test="totp-key">([A-Z2-7 ]+)<', html).group(1).replace(" ", "")
    from base64 import b32decode

    key_hex = b32decode(key_b32 + "=" * (-len(key_b32) % 8)).hex()
    wrong = client.post("/accounts/two-step/setup/", {"code": "000000" if code_at(key_hex) != "000000" else "111111"})
    assert wrong.status_code == 400 and b'data-field="code"' in wrong.content
    spent = code_at(key_hex)
    done = client.post("/accounts/two-step/setup/", {"code": spent})
    assert done.status_code == 200, done.content[:500]
    codes = re.findall(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>", done.content.decode())
    client.spent_code = spent  # the code enrolment used, for replay checks
    return key_hex, codes


def test_totp_enrol_then_sign_in_with_a_code_once(alpha):
    user = new_user(alpha, "kim@alpha.test")
    client = client_on("alpha")
    assert sign_in(client, user.email)["Location"] == "/"  # no device, not required: signed in
    assert client.get("/").status_code == 200

    key, codes = enrol(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    with tenant_context(alpha):
        assert TOTPDevice.objects.get(user=user).confirmed
        assert StaticDevice.objects.get(user=user).token_set.count() == 10
    assert client.get("/").status_code == 200  # the session that enrolled is verified

    client.post("/accounts/logout/")
    response = sign_in(client, user.email)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/two-step/")
    # Half signed in: no page, no session API.
    assert client.get("/customers/")["Location"].startswith("/accounts/two-step/?next=/customers/")
    api = client.get("/api/v1/me/")
    assert api.status_code == 403 and api.json()["error"]["code"] == "second_factor_required"

    # The code just used to confirm the app is refused (replay), so is a wrong one. The very code spent,
    # not "the code now": a 30-second step may have turned since, and the next step's code is valid.
    assert client.post("/accounts/two-step/", {"code": client.spent_code}).status_code == 400
    with tenant_context(alpha):
        TOTPDevice.objects.filter(user=user).update(throttling_failure_count=0, throttling_failure_timestamp=None)
    connection.set_schema_to_public()
    ok = client.post("/accounts/two-step/", {"code": code_at(key, 1), "next": "/customers/"})
    assert ok.status_code == 302 and ok["Location"] == "/customers/"
    assert client.get("/customers/").status_code == 200
    assert client.get("/api/v1/me/").status_code == 200

    # The same code again, in another browser: refused.
    other = client_on("alpha")
    sign_in(other, user.email)
    assert other.post("/accounts/two-step/", {"code": code_at(key, 1)}).status_code == 400
    assert other.get("/").status_code == 302


def test_a_recovery_code_works_once(alpha):
    user = new_user(alpha, "lee@alpha.test")
    client = client_on("alpha")
    sign_in(client, user.email)
    _key, codes = enrol(client)
    client.post("/accounts/logout/")

    sign_in(client, user.email)
    assert client.post("/accounts/two-step/", {"code": codes[3].upper()}).status_code == 302
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")

    sign_in(client, user.email)
    assert client.post("/accounts/two-step/", {"code": codes[3]}).status_code == 400
    assert client.get("/").status_code == 302
    with tenant_context(alpha):
        assert services.recovery_codes_left(user) == 9


def test_admins_must_enrol_before_anything_else(alpha):
    boss = new_user(alpha, "boss@alpha.test", role="admin")
    client = client_on("alpha")
    response = sign_in(client, boss.email)
    assert response["Location"].startswith("/accounts/two-step/setup/")
    for path in ("/", "/customers/", "/staff/", "/accounts/security/", "/settings/"):
        assert client.get(path)["Location"].startswith("/accounts/two-step/setup/"), path
    assert client.get("/api/v1/customers/").status_code == 403
    assert client.post("/api/v1/customers/", {"kind": "person"}).status_code == 403
    # Passkey registration is not a way around the app enrolment, nor is the sign-in ceremony.
    assert client.post("/accounts/passkeys/registration/begin/").status_code == 302
    # Allowed: enrolment itself, the language switch, signing out.
    assert client.get("/accounts/two-step/setup/").status_code == 200
    assert client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"}).status_code == 302
    enrol(client)
    assert client.get("/staff/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/")["Location"].startswith("/accounts/login/")


def test_operators_must_enrol(db):
    with schema_context("public"):
        User.objects.create_superuser("ops2@platform.test", PASSWORD, full_name="Ops Two")
    client = client_on(None)
    assert sign_in(client, "ops2@platform.test")["Location"].startswith("/accounts/two-step/setup/")
    assert client.get("/")["Location"].startswith("/accounts/two-step/setup/")
    assert client.get("/api/operator/agencies/").status_code == 403
    enrol(client)
    assert client.get("/").status_code == 200


def test_the_agency_switch_requires_it_of_all_staff(alpha, bravo, page_client):
    client = client_on("alpha")
    sign_in(client, "sales@alpha.test", password_for("alpha", "sales"))
    assert client.get("/customers/").status_code == 200
    bravo_client = client_on("bravo")
    sign_in(bravo_client, "sales@bravo.test", password_for("bravo", "sales"))

    settings_page = page_client("alpha", "admin").post("/settings/", {
        "name": alpha.name, "default_region": alpha.default_region, "currency": alpha.currency,
        "time_zone": alpha.time_zone, "language": alpha.language, "require_two_factor": "on"})
    assert settings_page.status_code == 302
    alpha.refresh_from_db()
    assert alpha.require_two_factor

    # The session already open goes to enrolment too; bravo's staff are not concerned.
    assert client.get("/customers/")["Location"].startswith("/accounts/two-step/setup/")
    assert client.get("/api/v1/customers/").status_code == 403
    assert bravo_client.get("/customers/").status_code == 200
    # The API shows and changes the switch (admins only).
    assert page_client("alpha", "admin").get("/api/v1/agency/").json()["require_two_factor"] is True


def test_agency_api_switch(api_client, alpha):
    response = api_client("alpha", "admin").patch("/api/v1/agency/", {"require_two_factor": True}, format="json")
    assert response.status_code == 200 and response.json()["require_two_factor"] is True
    assert api_client("alpha", "sales").patch("/api/v1/agency/", {"require_two_factor": False},
                                              format="json").status_code == 403
    alpha.refresh_from_db()
    assert alpha.require_two_factor


def test_a_device_of_alpha_means_nothing_at_bravo(alpha, bravo):
    """The same e-mail at two agencies is two people; alpha's device and verified session do not
    carry to bravo, where the agency requires a second step."""
    new_user(alpha, "twin@x.test")
    new_user(bravo, "twin@x.test")
    bravo.require_two_factor = True
    bravo.save()
    alpha_client = client_on("alpha")
    sign_in(alpha_client, "twin@x.test")
    key, _codes = enrol(alpha_client)

    # Alpha's verified session cookie on bravo's host: not signed in at all.
    alpha_client.defaults["HTTP_HOST"] = "bravo.localhost"
    assert alpha_client.get("/")["Location"].startswith("/accounts/login/")

    bravo_client = client_on("bravo")
    assert sign_in(bravo_client, "twin@x.test")["Location"].startswith("/accounts/two-step/setup/")
    # Alpha's app codes do not sign in at bravo: there is no device here to take them.
    assert bravo_client.post("/accounts/two-step/", {"code": code_at(key, 1)})["Location"].startswith(
        "/accounts/two-step/setup/")
    assert bravo_client.post("/accounts/two-step/setup/", {"code": code_at(key, 1)}).status_code == 400
    assert bravo_client.get("/customers/")["Location"].startswith("/accounts/two-step/setup/")
    with tenant_context(bravo):
        assert not TOTPDevice.objects.filter(confirmed=True, user__email="twin@x.test").exists()


def test_passkey_relying_party_is_the_agency_host(rf, alpha, settings):
    from accounts.mfa.webauthn import origin, rp_id

    settings.PLATFORM_SCHEME, settings.PLATFORM_PORT = "https", ""
    settings.ALLOWED_HOSTS = [".example.com", ".localhost"]
    request = rf.get("/", HTTP_HOST="alpha.example.com")
    assert rp_id(request) == "alpha.example.com" and origin(request) == "https://alpha.example.com"
    settings.PLATFORM_SCHEME, settings.PLATFORM_PORT = "http", "8000"
    request = rf.get("/", HTTP_HOST="bravo.localhost:8000")
    assert rp_id(request) == "bravo.localhost" and origin(request) == "http://bravo.localhost:8000"


def test_admin_resets_a_staff_members_second_factor(alpha, page_client):
    user = new_user(alpha, "lost.phone@alpha.test")
    client = client_on("alpha")
    sign_in(client, user.email)
    enrol(client)

    # Only those who manage staff may reset; and not their own.
    assert page_client("alpha", "manager").post(f"/staff/{user.pk}/security/", {"action": "reset"}).status_code == 403
    admin = page_client("alpha", "admin")
    with tenant_context(alpha):
        admin_pk = User.objects.get(email="admin@alpha.test").pk
    connection.set_schema_to_public()
    admin.post(f"/staff/{admin_pk}/security/", {"action": "reset"})
    with tenant_context(alpha):
        assert TOTPDevice.objects.filter(user_id=admin_pk).exists()

    response = admin.post(f"/staff/{user.pk}/security/", {"action": "reset"})
    assert response.status_code == 302
    with tenant_context(alpha):
        assert not TOTPDevice.objects.filter(user=user).exists()
        assert not StaticDevice.objects.filter(user=user).exists()
    assert client.get("/")["Location"].startswith("/accounts/login/")  # their sessions ended
    assert sign_in(client, user.email)["Location"] == "/"  # and they sign in without the lost phone


def test_reset_fence_other_agency_host(alpha, bravo, page_client):
    """An alpha admin's session means nothing on bravo's host."""
    target = staff(bravo, "sales")
    connection.set_schema_to_public()
    client = page_client("alpha", "admin", on="bravo.localhost")
    response = client.post(f"/staff/{target.pk}/security/", {"action": "signout"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_turning_the_app_off_needs_a_code(alpha):
    user = new_user(alpha, "off@alpha.test")
    client = client_on("alpha")
    sign_in(client, user.email)
    key, _codes = enrol(client)
    assert client.post("/accounts/security/", {"action": "totp_disable", "code": "123456"}).status_code == 400
    with tenant_context(alpha):
        assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        TOTPDevice.objects.filter(user=user).update(throttling_failure_count=0, throttling_failure_timestamp=None)
    connection.set_schema_to_public()
    assert client.post("/accounts/security/", {"action": "totp_disable", "code": code_at(key, 1)}).status_code == 302
    with tenant_context(alpha):
        assert not TOTPDevice.objects.filter(user=user).exists()
        assert not StaticDevice.objects.filter(user=user).exists()  # codes go with the last device


def test_new_recovery_codes_replace_the_old(alpha):
    user = new_user(alpha, "codes@alpha.test")
    client = client_on("alpha")
    sign_in(client, user.email)
    _key, old = enrol(client)
    page = client.post("/accounts/security/", {"action": "recovery_codes"})
    new = re.findall(r"<li><code>([0-9a-f]{5}-[0-9a-f]{5})</code></li>", page.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    client.post("/accounts/logout/")
    sign_in(client, user.email)
    assert client.post("/accounts/two-step/", {"code": old[0]}).status_code == 400


@pytest.mark.parametrize("with_device", [True, False])
def test_token_endpoint_asks_for_the_code(alpha, with_device):
    client = client_on("alpha")
    email = "admin@alpha.test" if with_device else "finance@alpha.test"
    role = email.split("@")[0]
    body = {"username": email, "password": password_for("alpha", role)}
    if not with_device:
        assert client.post("/api/v1/auth/token/", body).status_code == 200
        return
    missing = client.post("/api/v1/auth/token/", body)
    assert missing.status_code == 400 and "otp" in missing.json()["error"]["fields"]
    wrong = client.post("/api/v1/auth/token/", {**body, "otp": "000000" if totp_code(email) != "000000" else "111111"})
    assert wrong.status_code == 400 and "otp" in wrong.json()["error"]["fields"]
    with tenant_context(alpha):
        TOTPDevice.objects.filter(user__email=email).update(throttling_failure_count=0, throttling_failure_timestamp=None)
    connection.set_schema_to_public()
    code = fresh_totp_code(email)
    assert client.post("/api/v1/auth/token/", {**body, "otp": code}).status_code == 200
    again = client.post("/api/v1/auth/token/", {**body, "otp": code})  # a code counts once
    assert again.status_code == 400 and "otp" in again.json()["error"]["fields"]


# --- passkeys in a real browser ------------------------------------------------------------------

@pytest.mark.browser
def test_passkey_register_then_sign_in_with_it(app_server, committed):  # noqa: F811
    from playwright.sync_api import expect

    from tests.test_browser import CHROMIUM, chromium_page

    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed")
    email = "service@alpha.test"
    try:
        with chromium_page() as page:
            cdp = page.context.new_cdp_session(page)
            cdp.send("WebAuthn.enable")
            cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
                "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
                "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True}})
            page.goto(app_server.url("alpha", "/accounts/login/"))
            page.fill("input[name=username]", email)
            page.fill("input[name=password]", password_for("alpha", "service"))
            page.click("main button[type=submit]")
            expect(page).to_have_url(app_server.url("alpha", "/"))

            page.goto(app_server.url("alpha", "/accounts/security/"))
            page.click("[data-test=passkey-add]")
            expect(page.locator("[data-test=passkeys] li")).to_have_count(1)

            page.click("details.usermenu summary")
            page.click('[data-test="logout"]')
            page.goto(app_server.url("alpha", "/accounts/login/"))
            page.fill("input[name=username]", email)
            page.fill("input[name=password]", password_for("alpha", "service"))
            page.click("main button[type=submit]")
            expect(page).to_have_url(re.compile(r"/accounts/two-step/"))
            page.goto(app_server.url("alpha", "/customers/"))
            expect(page).to_have_url(re.compile(r"/accounts/two-step/\?next=/customers/"))
            page.click("[data-test=passkey-verify]")
            expect(page).to_have_url(app_server.url("alpha", "/customers/"))
            expect(page.locator("nav.nav")).to_be_visible()
        with committed(), tenant_context(Agency.objects.get(slug="alpha")):
            credential = WebAuthnCredential.objects.get(user__email=email)
            assert credential.confirmed and credential.last_used_at is not None
    finally:
        with committed():
            with tenant_context(Agency.objects.get(slug="alpha")):
                from django.contrib.sessions.models import Session

                from accounts.mfa.models import KnownDevice, SessionRecord

                for model in (WebAuthnCredential, StaticDevice, TOTPDevice, KnownDevice):
                    model.objects.filter(user__email=email).delete()
                records = SessionRecord.objects.filter(user__email=email)
                Session.objects.filter(session_key__in=records.values("session_key")).delete()
                records.delete()


def test_codes_are_checked_with_the_time(alpha):
    """The code of ten minutes ago is not accepted (tolerance is one step)."""
    user = new_user(alpha, "late@alpha.test")
    client = client_on("alpha")
    sign_in(client, user.email)
    key, _ = enrol(client)
    client.post("/accounts/logout/")
    sign_in(client, user.email)
    assert client.post("/accounts/two-step/", {"code": code_at(key, -20)}).status_code == 400


def test_demo_admins_sign_in_with_the_printed_key(alpha):
    """seed_demo's device for demo admins: the key printed beside the demo password works."""
    from base64 import b32decode

    from accounts.mfa.demo import demo_totp_key_b32, ensure_demo_device

    user = new_user(alpha, "demo.admin@alpha.test", role="admin")
    with tenant_context(alpha):
        assert ensure_demo_device(user, PASSWORD) and not ensure_demo_device(user, PASSWORD)
    connection.set_schema_to_public()
    key = b32decode(demo_totp_key_b32(PASSWORD)).hex()
    client = client_on("alpha")
    assert sign_in(client, user.email)["Location"].startswith("/accounts/two-step/")
    assert client.post("/accounts/two-step/", {"code": code_at(key)})["Location"] == "/"
    assert client.get("/staff/").status_code == 200


def test_the_second_step_works_while_the_agency_is_suspended(charlie):
    """A suspended agency is read-only, but its admins can still sign in (and take their data out)."""
    client = client_on("charlie")
    assert sign_in(client, "admin@charlie.test", password_for("charlie", "admin"))["Location"].startswith(
        "/accounts/two-step/")
    response = client.post("/accounts/two-step/", {"code": fresh_totp_code("admin@charlie.test")})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_operator_token_endpoint_asks_for_the_code(db):
    from tests.conftest import OPERATOR

    client = client_on(None)
    body = {"username": OPERATOR, "password": "operator-pass-1!"}
    missing = client.post("/api/operator/auth/token/", body)
    assert missing.status_code == 400 and "otp" in missing.json()["error"]["fields"]
    assert client.post("/api/operator/auth/token/", {**body, "otp": fresh_totp_code(OPERATOR)}).status_code == 200


def test_guessing_codes_locks_out_like_guessing_passwords(alpha, settings):
    """A wrong code counts as a failed sign-in (django-axes): at the limit the half-signed-in session
    ends and the sign-in page answers 429 for this account, the right password included."""
    user = new_user(alpha, "guesser@alpha.test")
    client = client_on("alpha")
    sign_in(client, user.email)
    enrol(client)
    client.post("/accounts/logout/")
    sign_in(client, user.email)
    answers = [client.post("/accounts/two-step/", {"code": f"{i:06d}"}).status_code
               for i in range(settings.AXES_FAILURE_LIMIT)]
    assert answers[-1] == 429 and set(answers[:-1]) == {400}
    assert client.get("/")["Location"].startswith("/accounts/login/")  # signed out
    assert sign_in_status(client, user.email) == 429
    with tenant_context(alpha):
        assert TOTPDevice.objects.get(user=user).confirmed  # the device stays; only signing in pauses


def sign_in_status(client, email):
    return client.post("/accounts/login/", {"username": email, "password": PASSWORD}).status_code


def test_guessing_codes_on_the_token_endpoint_locks_out(alpha, settings):
    user = new_user(alpha, "api.guesser@alpha.test")
    client = client_on("alpha")
    sign_in(client, user.email)
    enrol(client)
    api = client_on("alpha", REMOTE_ADDR="198.51.100.61")
    answers = [api.post("/api/v1/auth/token/", {"username": user.email, "password": PASSWORD, "otp": f"{i:06d}"})
               for i in range(settings.AXES_FAILURE_LIMIT)]
    assert [a.status_code for a in answers[:-1]] == [400] * (settings.AXES_FAILURE_LIMIT - 1)
    assert answers[-1].status_code == 429 and answers[-1].json()["error"]["code"] == "locked_out"
