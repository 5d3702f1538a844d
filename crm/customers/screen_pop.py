"""The screen pop's parts that other apps own: open complaints (care), recent trips (trips), the
service tier (tiers).

The customers core knows none of their tables. Each app registers a :class:`Part` from its
``AppConfig.ready()``: a SQL expression correlated on ``c.id`` (the caller's surviving customer
row), usually a ``json_agg`` or ``json_build_object`` subquery, and a function turning its value
(decoded from JSON, or None) into what the page and the API show. ``selectors.screen_pop`` puts
every part's expression into its one statement, so the screen pop stays one round trip.
"""
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Part:
    key: str  # the key in the screen pop's result ("open_complaints", "trips", "tier")
    sql: str  # a scalar SQL expression correlated on c.id (the caller's customer row)
    shape: Callable[[Any], Any]  # the expression's value → what the page and the API show


_parts: dict[str, Part] = {}


def register(part: Part) -> None:
    """Add a part (from an ``AppConfig.ready()``; registering a key again replaces it)."""
    _parts[part.key] = part


def parts() -> tuple[Part, ...]:
    return tuple(_parts.values())
