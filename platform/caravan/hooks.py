"""Hooks: how an app tells the apps that depend on it that something happened, without importing them.

The app that owns the event defines the hook (``contact_added = Hook("contact_added")`` in its
``hooks.py``) and calls it where the event happens, inside the same transaction; an app that
depends on it connects a function in its ``AppConfig.ready()``. Imports then point one way only
(tiers → customers, trips → pipeline), which ``tests/test_layering.py`` checks.

Unlike Django signals: receivers run in the order they were connected, are held strongly, take
keyword arguments only, and an exception in one propagates (the caller's transaction rolls back),
exactly as the direct call it replaces. A hook made with ``required=True`` is one whose event must
be heard (an access to customer data must be logged): called with no receiver connected, it raises
:class:`NoReceiver` instead of doing nothing.
"""
from collections.abc import Callable


class NoReceiver(RuntimeError):
    """A required hook was called and no app had connected to it (its app is missing, or its ready() did not run)."""


class Hook:
    def __init__(self, name: str, *, required: bool = False):
        self.name = name
        self.required = required
        self._receivers: list[Callable[..., object]] = []

    def connect(self, receiver: Callable[..., object]) -> Callable[..., object]:
        """Add a receiver (once; connecting the same function again changes nothing). Usable as a decorator."""
        if receiver not in self._receivers:
            self._receivers.append(receiver)
        return receiver

    def __call__(self, **kwargs) -> None:
        if self.required and not self._receivers:
            raise NoReceiver(f"hook {self.name} must be heard, and nothing is connected to it")
        for receiver in self._receivers:
            receiver(**kwargs)

    def __repr__(self) -> str:
        return f"<Hook {self.name}: {len(self._receivers)} receiver(s)>"
