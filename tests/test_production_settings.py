"""The production settings, tried on a production-configured server: gunicorn with DEBUG=0,
PLATFORM_SCHEME=https and PROXY_COUNT=1, asked as our TLS proxy asks (``X-Forwarded-Proto: https``)
and as a client on plain http would.

HSTS (agencies are subdomains: includeSubDomains), http → https redirects (not for the probes),
Secure/HttpOnly/SameSite cookies after a sign-in, a Content-Security-Policy whose nonce is new on
every response and is the one on the page's scripts, Permissions-Policy and the other headers,
our own 404 page (no debug page), and ``manage.py check --deploy`` with that environment.
"""
import http.client
import re
import subprocess
import sys
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest

from tests.conftest import password_for
from tests import servers
from tests.servers import ROOT, free_port, gunicorn_server

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

PRODUCTION = {"DEBUG": "0", "PLATFORM_SCHEME": "https", "PROXY_COUNT": "1", "SECURE_HSTS_SECONDS": "",
              "SECURE_SSL_REDIRECT": "", "SECURE_HSTS_PRELOAD": ""}
HTTPS = {"X-Forwarded-Proto": "https"}


@pytest.fixture(scope="module")
def production_server(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        with gunicorn_server(port=free_port(), log_dir=tmp_path_factory.mktemp("production-server"),
                             ready_headers=HTTPS, **PRODUCTION) as server:
            yield server


class Client:
    """Plain http to the server with a Host header; cookies kept by hand (the jar of a usual client
    would never send Secure cookies over plain http, and here the proxy's https is only a header)."""

    def __init__(self, server, slug="alpha", *, proxied=True):
        self.port, self.host = server.port, f"{slug}.localhost:{server.port}"
        self.proxied = proxied
        self.cookies: dict[str, str] = {}
        self.set_cookies: dict[str, str] = {}  # name -> the whole Set-Cookie line, last seen

    def request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = {"Host": self.host, **(HTTPS if self.proxied else {}), **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = urlencode(body)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        response.text = response.read().decode(errors="replace")
        for line in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie()
            cookie.load(line)
            for name, morsel in cookie.items():
                self.cookies[name] = morsel.value
                self.set_cookies[name] = line
        connection.close()
        return response


def nonce_of(response) -> str:
    policy = response.headers["Content-Security-Policy"]
    match = re.search(r"'nonce-([A-Za-z0-9+/=]+)'", policy)
    assert match, policy
    return match.group(1)


def test_headers_on_a_page_served_through_the_https_proxy(production_server):
    client = Client(production_server)
    first, second = client.request("GET", "/accounts/login/"), client.request("GET", "/accounts/login/")
    assert first.status == second.status == 200
    assert first.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    assert first.headers["X-Frame-Options"] == "DENY"
    assert first.headers["Referrer-Policy"] == "same-origin"
    assert first.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    permissions = first.headers["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "usb=()"):
        assert feature in permissions, permissions

    policy = first.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) if " " in part.strip() else (part.strip(), "")
                      for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"].startswith("'self' 'nonce-")
    assert "unsafe-inline" not in directives["script-src"] and "unsafe-eval" not in directives["script-src"]
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'self'" and directives["form-action"] == "'self'"
    assert "upgrade-insecure-requests" in directives
    assert "js.stripe.com" not in policy and "127.0.0.1" not in policy  # Stripe only on the Billing page

    # A new nonce on every response, and it is the one the page's scripts carry.
    one, two = nonce_of(first), nonce_of(second)
    assert one != two and len(one) >= 16
    scripts = re.findall(r"<script\b[^>]*>", first.text)
    assert scripts and all(f'nonce="{one}"' in tag for tag in scripts), scripts
    assert "onclick=" not in first.text and "javascript:" not in first.text


def test_plain_http_is_redirected_to_https_but_the_probes_are_not(production_server):
    client = Client(production_server, proxied=False)
    response = client.request("GET", "/customers/?q=1")
    assert response.status == 301
    assert response.headers["Location"] == f"https://alpha.localhost:{production_server.port}/customers/?q=1"
    assert "Strict-Transport-Security" not in response.headers  # only ever sent over https
    assert client.request("GET", "/healthz").status == 200  # load balancers probe the pod on http


def test_cookies_are_secure_httponly_and_lax_after_sign_in(production_server, committed_sign_in):
    client = Client(production_server)
    page = client.request("GET", "/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    origin = f"https://alpha.localhost:{production_server.port}"
    response = client.request("POST", "/accounts/login/",
                              {"csrfmiddlewaretoken": token, "username": "sales@alpha.test",
                               "password": password_for("alpha", "sales")},
                              headers={"Origin": origin, "Referer": origin + "/accounts/login/"})
    assert response.status == 302, response.text[:500]
    for name in ("sessionid", "csrftoken"):
        line = client.set_cookies[name]
        flags = {part.strip().split("=")[0].lower() for part in line.split(";")[1:]}
        assert {"secure", "httponly", "samesite"} <= flags, line
        assert "SameSite=Lax" in line, line
        assert "domain=" not in line.lower(), line  # host-only: never sent to another agency's subdomain
    assert client.request("GET", "/").status == 200  # signed in, over the proxy's https
    # The same cookies sent to bravo's host by hand are no session there.
    elsewhere = Client(production_server, "bravo")
    elsewhere.cookies = dict(client.cookies)
    response = elsewhere.request("GET", "/")
    assert response.status == 302 and "/accounts/login/" in response.headers["Location"]


def test_errors_show_our_pages_never_the_debug_page(production_server):
    client = Client(production_server)
    response = client.request("GET", "/no-such-page/")
    assert response.status == 404
    assert "Page not found" in response.text or "找不到" in response.text or "页面" in response.text
    assert "Traceback" not in response.text and "URLconf" not in response.text and "DEBUG = True" not in response.text
    assert response.headers["Content-Security-Policy"]  # error pages are under the policy too


def test_check_deploy_is_clean_with_the_production_environment(production_server):
    env = {**production_server.env, **PRODUCTION, "PLATFORM_DOMAIN": "caravan.example"}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr
    assert "security.W021" not in result.stdout  # silenced on purpose: preloading is an opt-in


@pytest.fixture
def committed_sign_in(committed):  # noqa: F811
    """alpha's sessions and sales' last sign-in put back after the test."""
    with servers.sign_ins_put_back(committed, "alpha", "sales@alpha.test"):
        yield

