"""Requests to addresses a user gave us (supplier feeds): public addresses only, checked at connect time.

An agency admin types a feed's URL and a worker fetches it, so without a fence anyone with that
right could make Caravan call its own network: ``127.0.0.1:<port>``, the database, another
service in the cluster, or a cloud's metadata service (``169.254.169.254``). The fence:

- only ``http`` and ``https``; no proxies from the environment, no ``file:``/``ftp:`` handlers;
- the host name is resolved when the connection is made, every address it resolves to must be a
  public one (``ipaddress.is_global``: no loopback, private, link-local, shared, reserved or
  multicast ranges), and the socket is opened to the address that was checked, so a name that
  resolves differently a moment later (DNS rebinding) cannot slip through;
- a redirect is a new connection and passes the same check;
- ``OUTBOUND_ALLOWED`` (operators) lists host names, addresses or networks that may be reached
  although not public: an on-premise supplier inside the operator's network.

:func:`check_url` gives the same answer early, for a form (a field error when the address is
refused; a name that does not resolve yet is left to the connect-time check).
"""
import http.client
import ipaddress
import socket
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _


class OutboundRefused(OSError):
    """The address is not one Caravan may call."""


class Unresolvable(OutboundRefused):
    """The host name does not resolve (now)."""


def _allowed_by_operator(host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    for entry in settings.OUTBOUND_ALLOWED:
        if entry.lower() == host.lower():
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def resolve(host: str, port: int) -> str:
    """The first address of ``host`` after checking every one it resolves to; refuses otherwise."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Unresolvable(_("The address %(host)s cannot be resolved.") % {"host": host}) from exc
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not (address.is_global or _allowed_by_operator(host, address)):
            raise OutboundRefused(_("%(host)s is not a public address (%(address)s); Caravan does not call "
                                    "internal networks.") % {"host": host, "address": address})
        addresses.append(str(address))
    if not addresses:
        raise Unresolvable(_("The address %(host)s cannot be resolved.") % {"host": host})
    return addresses[0]


def check_url(url: str) -> None:
    """Raise :class:`OutboundRefused` for a URL that may not be called. Names that do not resolve
    now pass (the connect-time check decides when the feed is fetched)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused(_("Use an http:// or https:// address."))
    try:
        resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except Unresolvable:
        pass


class _CheckedHTTPConnection(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.create_connection((resolve(self.host, self.port), self.port), self.timeout,
                                             self.source_address)


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    def connect(self):
        sock = socket.create_connection((resolve(self.host, self.port), self.port), self.timeout,
                                        self.source_address)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_CheckedHTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        return self.do_open(_CheckedHTTPSConnection, req, context=self._context)


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urlsplit(newurl).scheme not in ("http", "https"):
            raise OutboundRefused(_("The supplier redirected to a non-web address."))
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def opener() -> urllib.request.OpenerDirector:
    """A urllib opener that only speaks http(s) to checked addresses (no proxies, no file: or ftp:)."""
    director = urllib.request.OpenerDirector()
    for handler in (urllib.request.UnknownHandler(), _HTTPHandler(), _HTTPSHandler(),
                    urllib.request.HTTPDefaultErrorHandler(), _RedirectHandler(),
                    urllib.request.HTTPErrorProcessor()):
        director.add_handler(handler)
    return director
