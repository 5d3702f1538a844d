"""Hooks: how an app tells the apps that depend on it that something happened, without importing them.

The app that owns the event defines the hook (``contact_added = Hook("contact_added")`` in its
``hooks.py``) and calls it where the event happens, inside the same transaction; an app that
depends on it connects a function in its ``AppConfig.ready()``. Imports then point one way only
(tiers → customers, trips → pipeline), which ``tests/test_layering.py`` checks.

Unlike Django signals: receivers run in the order they were connected, are held strongly, take
keyword arguments only, and an exception in one propagates (the caller's transaction rolls back),
exactly as the direct call it replaces.
"""
from collections.abc import Callable


class Hook:
    def __init__(self, name: str):
        self.name = name
        self._receivers: list[Callable[..., object]] = []

    def connect(self, receiver: Callable[..., object]) -> Callable[..., object]:
        """Add a receiver (once; connecting the same function again changes nothing). Usable as a decorator."""
        if receiver not in self._receivers:
            self._receivers.append(receiver)
        return receiver

    def __call__(self, **kwargs) -> None:
        for receiver in self._receivers:
            receiver(**kwargs)

    def __repr__(self) -> str:
        return f"<Hook {self.name}: {len(self._receivers)} receiver(s)>"
