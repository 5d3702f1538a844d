"""The signature on requests other systems send us (the agency website's events, suppliers' pushed
feeds): ``X-Caravan-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>``. A signature
older (or newer) than ``TOLERANCE`` is refused, so a captured request cannot be replayed later.

``Verifier`` takes the body in chunks, so a large body is checked while it streams to disk."""
import hashlib
import hmac
import time

TOLERANCE = 300  # seconds a signature stays valid


class BadSignature(Exception):
    pass


class Verifier:
    def __init__(self, *, header: str, secret: str, now: float | None = None):
        parts = dict(p.split("=", 1) for p in (header or "").split(",") if "=" in p)
        try:
            self.stamp = int(parts["t"])
        except (KeyError, ValueError):
            raise BadSignature("Missing or malformed X-Caravan-Signature header.") from None
        self.given = parts.get("v1", "")
        self.now = now
        self._mac = hmac.new(secret.encode(), f"{self.stamp}.".encode(), hashlib.sha256)

    def check_fresh(self) -> None:
        if abs((self.now or time.time()) - self.stamp) > TOLERANCE:
            raise BadSignature("The signature is too old (or from the future); sign each delivery afresh.")

    def update(self, chunk: bytes) -> None:
        self._mac.update(chunk)

    def check(self) -> None:
        """After the whole body: the signature must match and be fresh."""
        if not hmac.compare_digest(self._mac.hexdigest(), self.given):
            raise BadSignature("The signature does not match.")
        self.check_fresh()
