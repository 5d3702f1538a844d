"""Sign-in protection (issue 18, "Log-in"): lockout per account and per client address as our own
proxies saw it, per agency, with a clear message and an unlock path; the token endpoint, the password
reset and the one-time links likewise."""
import time

import pytest
from django_tenants.utils import tenant_context

from accounts.models import User

from .conftest import OPERATOR, password_for

LIMIT = 10  # SIGNIN_FAILURE_LIMIT's default


def clear_rate_counters():
    """Rate counters live in Redis, not rolled back with a test's transaction, under every agency's
    schema prefix (so not reachable with the cache's own delete_pattern from one schema)."""
    from django_redis import get_redis_connection

    redis = get_redis_connection("default")
    for pattern in ("*:rate:*", "*:api-rate:*", "*throttle_login*"):
        for key in redis.scan_iter(pattern):
            redis.delete(key)


@pytest.fixture(autouse=True)
def _fresh_counters():
    clear_rate_counters()
    yield
    clear_rate_counters()


def sign_in(client, email, password, **extra):
    return client.post("/accounts/login/", {"username": email, "password": password}, **extra)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_thirty_wrong_passwords_then_the_right_one_is_refused(page_client, settings):
    """The finding: 30 wrong passwords, then the right one was accepted."""
    client = page_client("alpha")
    answers = [sign_in(client, "sales@alpha.test", f"wrong-{i}").status_code for i in range(30)]
    assert answers[:LIMIT - 1] == [200] * (LIMIT - 1)  # the form again, with its error
    assert set(answers[LIMIT - 1:]) == {429}
    right = sign_in(client, "sales@alpha.test", password_for("alpha", "sales"))
    assert right.status_code == 429 and not signed_in(client)
    text = right.content.decode()
    assert "Too many failed sign-ins" in text and "15 minutes" in text and "Staff page" in text
    assert 0 < int(right["Retry-After"]) <= settings.SIGNIN_LOCKOUT_MINUTES * 60 + 1


def test_the_lockout_message_is_in_chinese_too(page_client):
    client = page_client("alpha")
    for i in range(LIMIT):
        response = sign_in(client, "sales@alpha.test", f"wrong-{i}", HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert response.status_code == 429
    assert 'lang="zh-hans"' in response.content.decode() or "zh" in response.headers.get("Content-Language", "")


def test_the_account_locks_whatever_address_the_attempts_come_from(page_client):
    for i in range(LIMIT):
        sign_in(page_client("alpha"), "Sales@Alpha.test ", "wrong", REMOTE_ADDR=f"198.51.100.{i}")
    response = sign_in(page_client("alpha"), "sales@alpha.test", password_for("alpha", "sales"), REMOTE_ADDR="192.0.2.1")
    assert response.status_code == 429


def test_one_address_trying_many_accounts_is_locked_out_for_every_account(page_client):
    client = page_client("alpha")
    for i in range(LIMIT):
        sign_in(client, f"nobody-{i}@alpha.test", "wrong")
    response = sign_in(client, "manager@alpha.test", password_for("alpha", "manager"))
    assert response.status_code == 429 and not signed_in(client)
    # Another address signs in to that account normally: only the address was locked.
    other = page_client("alpha")
    assert sign_in(other, "manager@alpha.test", password_for("alpha", "manager"), REMOTE_ADDR="192.0.2.7").status_code == 302


def test_invented_forwarded_for_addresses_do_not_evade_the_count_on_the_token_endpoint(api_client):
    """The finding: 25 attempts with 25 invented X-Forwarded-For addresses all got through."""
    client = api_client("alpha")
    answers = [client.post("/api/v1/auth/token/", {"username": f"guess-{i}@alpha.test", "password": "wrong"},
                           HTTP_X_FORWARDED_FOR=f"203.0.113.{i}") for i in range(25)]
    codes = [a.status_code for a in answers]
    assert codes[:LIMIT - 1] == [400] * (LIMIT - 1) and set(codes[LIMIT - 1:]) == {429}
    locked = answers[LIMIT - 1]
    assert locked.json()["error"]["code"] == "locked_out" and int(locked["Retry-After"]) > 0
    assert "Too many failed sign-ins" in locked.json()["error"]["message"]
    assert answers[-1].json()["error"]["code"] in ("locked_out", "throttled")  # DRF's 20/min also holds
    clear_rate_counters()  # DRF's 20/min too: what refuses the right password must be the lockout
    right = client.post("/api/v1/auth/token/", {"username": "admin@alpha.test", "password": password_for("alpha", "admin")},
                        HTTP_X_FORWARDED_FOR="198.51.100.77")
    assert right.status_code == 429 and right.json()["error"]["code"] == "locked_out"


def test_behind_our_proxy_the_address_it_appended_is_counted(page_client, settings):
    settings.PROXY_COUNT = 1
    client = page_client("alpha")
    for i in range(LIMIT):  # the client invents the first hop; our proxy appended 203.0.113.9
        sign_in(client, f"guess-{i}@alpha.test", "wrong", HTTP_X_FORWARDED_FOR=f"6.6.6.{i}, 203.0.113.9")
    locked = sign_in(client, "admin@alpha.test", password_for("alpha", "admin"), HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9")
    assert locked.status_code == 429
    elsewhere = sign_in(page_client("alpha"), "admin@alpha.test", password_for("alpha", "admin"),
                        HTTP_X_FORWARDED_FOR="6.6.6.1, 203.0.113.10")
    assert elsewhere.status_code == 302


def test_a_lockout_at_one_agency_locks_nothing_at_another(page_client, alpha, bravo):
    for agency in (alpha, bravo):
        with tenant_context(agency):
            User.objects.create_user("ana@x.test", "Ana-Pass-12345", role="sales", full_name="Ana")
    attacker = page_client("alpha")
    for i in range(LIMIT + 5):
        sign_in(attacker, "ana@x.test", "wrong")
    assert sign_in(page_client("alpha"), "ana@x.test", "Ana-Pass-12345").status_code == 429
    # Same e-mail, same address (127.0.0.1), other agency: untouched.
    at_bravo = page_client("bravo")
    assert sign_in(at_bravo, "ana@x.test", "Ana-Pass-12345").status_code == 302 and signed_in(at_bravo)


def test_the_admin_sees_the_lockout_and_unlocks(page_client, alpha):
    attacker = page_client("alpha")
    for i in range(LIMIT):
        sign_in(attacker, "finance@alpha.test", "wrong")
    admin = page_client("alpha", "admin")
    page = admin.get("/staff/").content.decode()
    assert 'data-test="lockouts"' in page and "finance@alpha.test" in page and "127.0.0.1" in page
    # A sales person may not unlock; bravo's admin cannot unlock alpha's lockout.
    assert page_client("alpha", "sales").post("/staff/unlock/", {"kind": "account", "value": "finance@alpha.test"}).status_code == 403
    page_client("bravo", "admin").post("/staff/unlock/", {"kind": "account", "value": "finance@alpha.test"})
    page_client("bravo", "admin").post("/staff/unlock/", {"kind": "address", "value": "127.0.0.1"})
    assert sign_in(page_client("alpha"), "finance@alpha.test", password_for("alpha", "finance")).status_code == 429
    for kind, value in (("account", "finance@alpha.test"), ("address", "127.0.0.1")):
        assert admin.post("/staff/unlock/", {"kind": kind, "value": value}).status_code == 302
    assert 'data-test="lockouts"' not in admin.get("/staff/").content.decode()
    assert admin.post("/staff/unlock/", {"kind": "address", "value": "not-an-address"}).status_code == 302
    person = page_client("alpha")
    assert sign_in(person, "finance@alpha.test", password_for("alpha", "finance")).status_code == 302 and signed_in(person)


def test_a_right_password_clears_the_accounts_failures_but_not_the_addresss(page_client):
    for i in range(LIMIT - 1):
        sign_in(page_client("alpha"), "service@alpha.test", "wrong", REMOTE_ADDR=f"192.0.2.{i}")
    assert sign_in(page_client("alpha"), "service@alpha.test", password_for("alpha", "service"),
                   REMOTE_ADDR="192.0.2.50").status_code == 302
    for i in range(LIMIT - 1):  # the account's count started again
        assert sign_in(page_client("alpha"), "service@alpha.test", "wrong", REMOTE_ADDR=f"192.0.2.{60 + i}").status_code == 200
    # Someone who holds one account cannot use it to clear their address's failures at others.
    for i in range(LIMIT - 1):
        sign_in(page_client("alpha"), f"guess-{i}@alpha.test", "wrong", REMOTE_ADDR="192.0.2.99")
    assert sign_in(page_client("alpha"), "sales@alpha.test", password_for("alpha", "sales"),
                   REMOTE_ADDR="192.0.2.99").status_code == 302
    assert sign_in(page_client("alpha"), "guess-x@alpha.test", "wrong", REMOTE_ADDR="192.0.2.99").status_code == 429


def test_operators_are_locked_out_on_the_platform_and_unlocked_in_the_console(page_client, operator_client):
    client = page_client(None)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"  # the platform's pages default to Chinese
    for i in range(LIMIT):
        sign_in(client, OPERATOR, "wrong")
    locked = sign_in(client, OPERATOR, "operator-pass-1!")
    assert locked.status_code == 429 and "another operator" in locked.content.decode()
    page = operator_client.get("/signin-lockouts/")
    assert page.status_code == 200 and OPERATOR in page.content.decode()
    assert operator_client.post("/signin-lockouts/", {"kind": "account", "value": OPERATOR}).status_code == 302
    assert operator_client.post("/signin-lockouts/", {"kind": "address", "value": "127.0.0.1"}).status_code == 302
    assert sign_in(page_client(None), OPERATOR, "operator-pass-1!").status_code == 302
    # The agency side never sees the operators' lockouts, nor may staff use the console's unlock.
    assert page_client("alpha", "admin").post("/signin-lockouts/", {"kind": "account", "value": OPERATOR}).status_code == 404


def away_from_a_window_edge(window: int, *, at_least: float = 60) -> None:
    """The limits count in fixed windows of the clock (caravan.clients.rate_hit): a test's requests that
    straddled a window's end would start a fresh count (CI met it, at load 10). Waits for the next window when
    less than ``at_least`` seconds of this one are left."""
    left = window - time.time() % window
    if left < at_least:
        time.sleep(left + 0.5)


def test_the_password_reset_is_limited_per_address_and_per_email(page_client, mailbox):
    from frontend.views.signin_guard import WINDOW

    away_from_a_window_edge(WINDOW)
    client = page_client("alpha")
    answers = [client.post("/accounts/password/reset/", {"email": f"someone-{i}@alpha.test"}).status_code for i in range(7)]
    assert answers[:5] == [302] * 5 and set(answers[5:]) == {429}
    clear_rate_counters()
    per_email = [page_client("alpha").post("/accounts/password/reset/", {"email": "sales@alpha.test"},
                                           REMOTE_ADDR=f"198.51.100.{i}") for i in range(5)]
    assert [r.status_code for r in per_email] == [302, 302, 302, 429, 429]
    assert "Too many attempts" in per_email[-1].content.decode() and int(per_email[-1]["Retry-After"]) > 0
    assert len(mailbox) == 3  # three mails to sales@, none to the invented addresses


def test_one_time_links_are_limited_per_address(page_client):
    """Invitation and reset links: guessing their tokens is throttled per address."""
    from frontend.views.signin_guard import WINDOW

    away_from_a_window_edge(WINDOW)
    client = page_client("alpha")
    answers = [client.get(f"/accounts/invitation/MQ/guess-{i}/").status_code for i in range(12)]
    answers += [client.get(f"/accounts/password/reset/MQ/guess-{i}/").status_code for i in range(12)]
    assert answers[:20] == [200] * 20 and set(answers[20:]) == {429}
    assert page_client("bravo").get("/accounts/invitation/MQ/guess/").status_code == 200  # per agency


def test_a_failed_second_step_can_count_like_a_wrong_password(page_client, alpha, rf):
    """``accounts.signin.record_failure``: for steps after the password (a wrong one-time code)."""
    from accounts import signin

    with tenant_context(alpha):
        results = [signin.record_failure(rf.post("/accounts/two-step/"), "sales@alpha.test") for _ in range(LIMIT)]
        assert results[-1] is True and not any(results[:-1])
        assert signin.is_locked(rf.post("/"), "sales@alpha.test")
    assert sign_in(page_client("alpha"), "sales@alpha.test", password_for("alpha", "sales")).status_code == 429
