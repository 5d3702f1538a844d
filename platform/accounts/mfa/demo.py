"""The demo's second step (``make run``): the demo admins and the operator must pass one, so
``seed_demo`` gives each an authenticator-app device whose key is derived from the demo password,
printed at start-up beside it. Plain Python (no Django), so ``infra.devenv`` can print it too."""
import hashlib
from base64 import b32encode


def demo_totp_key(password: str) -> bytes:
    return hashlib.sha1(f"caravan-demo-totp:{password}".encode()).digest()


def demo_totp_key_b32(password: str) -> str:
    """What to type into an authenticator app (time-based, 6 digits, 30 s)."""
    return b32encode(demo_totp_key(password)).decode()


def ensure_demo_device(user, password: str) -> bool:
    """Give a demo user the demo key's device unless they already have a confirmed one."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return False
    TOTPDevice.objects.create(user=user, name="Demo authenticator", key=demo_totp_key(password).hex(), confirmed=True)
    return True
