"""Texts the system writes (task titles made by jobs and services…), stored as *kind + params* and
rendered in the reader's language, never in the language that was active when they were written.

- ``KINDS`` is the registry: a kind names a ``gettext_lazy`` template with named params
  (``%(name)s``), optionally followed by an untranslated *tail* of data only (``"%(name)s"``, joined
  with ": "), the shape the older "Prefix: name" texts had.
- Params hold data (names, numbers, ISO dates, codes), never words already translated. A param
  that is a choice (a complaint category, a clock kind) stores its code; ``choices`` names the
  choices (a dotted path) whose label is shown, translated at render.
- ``store(kind, **params)`` → ``(kind, params)`` to save next to the fallback text;
  ``render(kind, params, fallback)`` → the text in the active language (the fallback — the text
  stored when it was written — for an unknown kind or params that do not fit).
- ``recognise(text, kinds)`` reads an old rendering (English or Chinese) back into kind + params:
  the data migrations of rows written before kinds existed use it.
- ``lazy_format(template, **params)``: a lazy text with params, for module and class level
  constants (``gettext_lazy(...) % {...}`` there is translated once, at import, in whatever
  language was active).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import import_module

from django.utils import translation
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

# The languages old rows were written in (their renderings are recognised).
WRITTEN_IN = ("en", "zh-hans")
EMPTY = "—"  # shown for an empty data param (a customer without a tier before)


@dataclass(frozen=True)
class TextKind:
    template: object  # lazy text with %(param)s placeholders
    tail: str = ""  # data only, not translated, after ": "
    choices: dict = field(default_factory=dict)  # param -> dotted path of choices (code stored, label shown)
    lower: tuple = ()  # choice params shown in lower case inside a sentence


_PATHS = {
    "category": "crm.care.models.Complaint.Category",
    "clock": "crm.tiers.models.ServiceClock.Kind",
    "approval": "crm.policies.models.Approval.Status",
    "festival": "crm.customers.festivals.FESTIVAL_CHOICES",
}

KINDS: dict[str, TextKind] = {
    # pipeline tasks
    "new_lead": TextKind(_("New lead: %(title)s")),
    "deposit_received": TextKind(_("Deposit received for %(ref)s: call %(name)s today")),
    "approval_decided": TextKind(_("Approval %(status)s: %(item)s for %(name)s"),
                                 choices={"status": _PATHS["approval"]}, lower=("status",)),
    "low_survey_score": TextKind(_("Low survey score: call %(name)s")),
    "complaint": TextKind(_("Complaint from %(name)s: %(category)s"), choices={"category": _PATHS["category"]}),
    "complaint_escalated": TextKind(_("Escalated complaint from %(name)s: %(category)s"),
                                    choices={"category": _PATHS["category"]}),
    "sla_breached": TextKind(_("Service level breached: %(kind)s from %(name)s"), choices={"kind": _PATHS["clock"]}),
    "sla_at_risk": TextKind(_("Service level at risk: %(kind)s from %(name)s"), choices={"kind": _PATHS["clock"]}),
    "visit_slot": TextKind(_("Visit %(account)s")),
    "visit_follow_up": TextKind(_("Follow up the visit to %(account)s")),
    "tier_changed": TextKind(_("Service tier changed"), tail="%(name)s: %(from)s → %(to)s"),
    "outreach": TextKind(_("Proactive outreach"), tail="%(name)s (%(tier)s)"),
    "value_spend_drop": TextKind(_("Spend dropped"), tail="%(name)s"),
    "value_complaints": TextKind(_("Complaints rising"), tail="%(name)s"),
    "value_dormant": TextKind(_("Gone dormant"), tail="%(name)s"),
    "value_at_risk": TextKind(_("Probably lapsing"), tail="%(name)s"),
    "greeting": TextKind(_("Greeting"), tail="%(name)s (%(label)s, %(date)s)"),
    "holiday_suggestion": TextKind(_("Holiday suggestion (%(festival)s %(year)s)"), tail="%(name)s",
                                   choices={"festival": _PATHS["festival"]}),
    "win_back": TextKind(_("Win back"), tail="%(name)s"),
    "referral_reward": TextKind(_("Reward the referral"), tail="%(name)s"),
    "after_trip_call": TextKind(_("After-trip call"), tail="%(trip)s"),
}


class UnknownKind(KeyError):
    pass


def store(kind: str, /, **params) -> tuple[str, dict]:
    """What to save for a system text: its kind and its params (JSON data). An unknown kind or a
    missing param fails here, where the text is written, not later where it is read."""
    spec = KINDS.get(kind)
    if spec is None:
        raise UnknownKind(kind)
    missing = set(_names(spec)) - set(params)
    if missing:
        raise KeyError(f"{kind}: missing params {sorted(missing)}")
    return kind, {name: _plain(value) for name, value in params.items()}


def render(kind: str, params: dict | None, fallback: str = "") -> str:
    """The text of ``kind`` with ``params`` in the active language; ``fallback`` (the stored text)
    for no kind, an unknown one or params that do not fit."""
    spec = KINDS.get(kind or "")
    if spec is None or not isinstance(params, dict):
        return fallback
    values = dict(params)
    for name, path in spec.choices.items():
        label = _labels(path).get(values.get(name))
        if label is not None:
            values[name] = str(label).lower() if name in spec.lower else str(label)
    for name, value in values.items():
        if value is None or value == "":
            values[name] = EMPTY
    try:
        text = str(spec.template) % values
        if spec.tail:
            text += ": " + spec.tail % values
    except (KeyError, TypeError, ValueError):
        return fallback
    return text


def display(kind: str, params: dict | None, fallback: str) -> str:
    """A model's display text: rendered from its kind when it has one, else the text as stored."""
    return render(kind, params, fallback) if kind else fallback


def lazy_format(template, **params):
    """``template % params`` translated when shown, not when the constant is made."""
    return lazy(lambda: str(template) % params, str)()


# --- reading old renderings back -----------------------------------------------------------------

def recognise(text: str, kinds=None) -> tuple[str, dict] | None:
    """The kind and params of ``text`` if it is the English or Chinese rendering one of ``kinds``
    (all by default) produced; None when it is not recognised (a text somebody typed)."""
    text = (text or "").strip()
    for kind in kinds or KINDS:
        for language in WRITTEN_IN:
            pattern, choice_codes = _pattern(kind, language)
            match = pattern.match(text)
            if match is None:
                continue
            params = {}
            for name, value in match.groupdict().items():
                if name in choice_codes:
                    value = choice_codes[name].get(value, value)
                elif value == EMPTY:
                    value = ""
                params[name] = value
            return kind, params
    return None


@lru_cache(maxsize=None)
def _pattern(kind: str, language: str):
    spec = KINDS[kind]
    with translation.override(language):
        template = str(spec.template)
        choice_codes = {}
        for name, path in spec.choices.items():
            codes = {}
            for lang in WRITTEN_IN:
                with translation.override(lang):
                    for code, label in _labels(path).items():
                        label = str(label)
                        codes[label] = codes[label.lower()] = code
            choice_codes[name] = codes
    full = template + (": " + spec.tail if spec.tail else "")
    seen = set()

    def group(match):
        name, conversion = match.group(1), match.group(2)
        if name in seen:
            return f"(?P={name})"
        seen.add(name)
        if name in choice_codes:
            return f"(?P<{name}>" + "|".join(re.escape(label) for label in sorted(choice_codes[name], key=len,
                                                                                        reverse=True)) + ")"
        return f"(?P<{name}>-?\\d+)" if conversion == "d" else f"(?P<{name}>.+?)"

    parts = re.split(r"(%\(\w+\)[sd])", full)
    regex = "".join(group(re.match(r"%\((\w+)\)([sd])", part)) if part.startswith("%(") else re.escape(part)
                    for part in parts)
    return re.compile(f"^{regex}$", re.S), choice_codes


def _names(spec: TextKind) -> list[str]:
    with translation.override(None):  # the msgid
        template = str(spec.template)
    return re.findall(r"%\((\w+)\)", template) + re.findall(r"%\((\w+)\)", spec.tail)


def _labels(path: str) -> dict:
    module, _dot, rest = path.partition(".models.") if ".models." in path else path.rpartition(".")
    found = import_module(module + (".models" if ".models." in path else ""))
    for name in rest.split("."):
        found = getattr(found, name)
    return dict(found.choices if hasattr(found, "choices") else found)


def _plain(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
