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
from django.utils.translation import pgettext_lazy

# The languages old rows were written in (their renderings are recognised).
WRITTEN_IN = ("en", "zh-hans")
EMPTY = "—"  # shown for an empty data param (a customer without a tier before)


@dataclass(frozen=True)
class TextKind:
    template: object  # lazy text with %(param)s placeholders
    tail: str = ""  # data only, not translated, after ": "
    choices: dict = field(default_factory=dict)  # param -> dotted path of choices (code stored, label shown)
    lower: tuple = ()  # choice params shown in lower case inside a sentence
    note: str = ""  # a param (text people typed: a comment) shown on its own line after, when given
    note_sep: str = "\n"  # what goes between the text and the note
    braces: bool = False  # the msgid names its params {name}, not %(name)s (older texts filled in SQL)
    mixed: bool = False  # the msgid names some params {name} and some %(name)s (filled in two steps)
    types: dict = field(default_factory=dict)  # param -> "money" | "num" | "day" | "daytime": data shown formatted
    empty: dict = field(default_factory=dict)  # param -> lazy text shown when the param is empty (else "—")
    # Optional lines after the text, each "\n" + its lazy template (+ an untranslated data tail) when its
    # param is given: (param, template, tail)
    lines: tuple = ()

    def template_text(self) -> str:
        """The template in the active language, with %(name)s placeholders."""
        text = str(self.template)
        if self.braces:
            text = re.sub(r"\{(\w+)\}", r"%(\1)s", text.replace("%", "%%"))
        elif self.mixed:
            text = re.sub(r"\{(\w+)\}", r"%(\1)s", text)
        return text


_PATHS = {
    "category": "crm.care.models.Complaint.Category",
    "reason": "crm.loyalty.models.WinBack.Reason",
    "severity": "crm.care.models.Complaint.Severity",
    "compensation": "crm.care.models.Complaint.Compensation",
    "complaint_status": "crm.care.models.Complaint.Status",
    "payment": "crm.trips.models.Payment.Kind",
    "method": "crm.trips.models.Payment.Method",
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
    # timeline entries the system writes (crm.customers Contact)
    "survey_sent": TextKind(_("Satisfaction survey for “%(trip)s” sent to %(email)s.")),
    "survey_answered": TextKind(_("Survey answered for “%(trip)s”: satisfaction %(csat)d/5, would recommend "
                                  "%(nps)d/10."), note="comment"),
    "complaint_logged": TextKind(_("Complaint logged (%(severity)s, %(category)s): %(description)s"),
                                 choices={"severity": _PATHS["severity"], "category": _PATHS["category"]}),
    "complaint_moved": TextKind(_("Complaint “%(category)s”: %(from)s → %(to)s."),
                                choices={"category": _PATHS["category"], "from": _PATHS["complaint_status"],
                                         "to": _PATHS["complaint_status"]}),
    "complaint_resolved": TextKind(_("Complaint “%(category)s”: %(from)s → %(to)s."),
                                   choices={"category": _PATHS["category"], "from": _PATHS["complaint_status"],
                                            "to": _PATHS["complaint_status"], "kind": _PATHS["compensation"]},
                                   types={"amount": "money:currency"},
                                   lines=(("text", _("Resolution: %(text)s"), ""),
                                          ("kind", _("Compensation: %(kind)s"), " %(amount)s")),
                                   empty={"amount": ""}),
    "complaint_reassigned": TextKind(_("Complaint “%(category)s” reassigned to %(name)s."),
                                     choices={"category": _PATHS["category"]}),
    "complaint_passed_deadline": TextKind(_("Complaint “%(category)s” passed its deadline and was escalated to the "
                                            "managers."), choices={"category": _PATHS["category"]}),
    # the customer portal (crm.portal, crm.proposals, crm.checkout, crm.documents): one block per area
    "portal_invited": TextKind(_("Invited to the customer portal at %(email)s.")),
    "portal_invited_trip": TextKind(_("Invited to the customer portal at %(email)s for the trip “%(trip)s”.")),
    # portal: proposals
    "proposal_sent": TextKind(_("Proposal version %(version)d for the trip “%(trip)s” sent to %(email)s.")),
    "proposal_accepted": TextKind(_("Proposal version %(version)d for the trip “%(trip)s” accepted in the portal by "
                                    "%(name)s.")),
    "proposal_accepted_task": TextKind(_("Proposal accepted"), tail="%(trip)s"),
    # portal: payments
    "portal_paid": TextKind(_("%(kind)s of %(amount)s paid online by %(name)s for the trip “%(trip)s” (Stripe %(intent)s)."),
                            choices={"kind": _PATHS["payment"]}),
    "portal_refunded_at_stripe": TextKind(_("Refund of %(amount)s for the trip “%(trip)s” made in Stripe (%(refund)s).")),
    # portal: documents
    "document_uploaded": TextKind(_("%(kind)s scan of %(name)s uploaded in the customer portal."),
                                  choices={"kind": "crm.documents.models.DocumentFile.Kind"}),
    "document_to_verify": TextKind(_("Document to verify: %(kind)s of %(name)s"),
                                   choices={"kind": "crm.documents.models.DocumentFile.Kind"}),
    "document_rejected": TextKind(_("%(kind)s scan of %(name)s rejected; a new one was asked for."),
                                  choices={"kind": "crm.documents.models.DocumentFile.Kind"}, note="reason",
                                  note_sep=" "),
    # portal: messages and self-service
    "portal_message": TextKind(_("Answer %(name)s's message in the customer portal")),
    "portal_message_trip": TextKind(_("Answer %(name)s's message in the customer portal about “%(trip)s”")),
    "payment_recorded": TextKind(_("%(kind)s of %(amount)s recorded for trip %(ref)s “%(title)s” (%(method)s)."),
                                 choices={"kind": _PATHS["payment"], "method": _PATHS["method"]}),
    "policy_check_in": TextKind(_("Policy check of “%(item)s” for %(name)s: in policy (version %(version)d).")),
    "policy_check_forbidden": TextKind(_("Policy check of “%(item)s” for %(name)s: out of policy, and the policy "
                                         "forbids it (version %(version)d).")),
    "policy_check_approval": TextKind(_("Policy check of “%(item)s” for %(name)s: out of policy (version "
                                        "%(version)d); approval requested.")),
    "approval_decided_note": TextKind(_("Out-of-policy booking “%(item)s” for %(name)s %(status)s by %(who)s."),
                                      choices={"status": _PATHS["approval"]}, lower=("status",), note="comment",
                                      empty={"who": _("the approver")}),  # decided by a link: no name
    "won_back_note": TextKind(_("Won back: the customer booked “{trip}”."), braces=True),
    "greeting_note": TextKind(_("Greeting for {label}: a task for the account manager to get in touch personally."),
                              braces=True),
    "referral_rewarded": TextKind(_("Reward for referring %(name)s: %(reward)s")),
    "win_back_reason": TextKind(_("Win-back: reason for leaving recorded — %(reason)s."),
                                choices={"reason": _PATHS["reason"]}, note="note", note_sep=" "),
    "win_back_offer": TextKind(_("Win-back offer: %(offer)s")),
    "win_back_lost": TextKind(_("Win-back case closed: customer lost."), note="note", note_sep=" "),
    # customer import: a row's errors (crm.customers.imports; ImportJob.errors and the dry run's report)
    "import_bad_date": TextKind(_("“%(value)s” is not a date we can read; write it as 1985-03-02.")),
    "import_future_birthday": TextKind(_("The birthday cannot be in the future.")),
    "import_old_birthday": TextKind(_("“%(value)s” is too long ago for a birthday.")),
    "import_long_tag": TextKind(_("A tag has at most 40 characters.")),
    "import_no_name": TextKind(_("Enter the customer's name.")),
    "import_no_company": TextKind(_("Give the company as well.")),
    "import_too_long": TextKind(_("At most %(count)s characters.")),
    "import_gender": TextKind(_("“%(value)s” is not a gender we know (男/女, M/F).")),
    "import_source": TextKind(_("“%(value)s” is not a source channel we know.")),
    "import_yes_no": TextKind(_("Write yes or no (是/否).")),
    "import_latin": TextKind(_("Use Latin letters as printed in the passport.")),
    "import_duplicate_row": TextKind(_("Duplicate of row %(row)s in this file.")),
    "import_taken": TextKind(_("%(value)s belongs to another customer, %(name)s.")),
    "import_corporate": TextKind(_("This row matches the corporate account %(name)s, not a person.")),
    "import_same_customer": TextKind(_("Row %(row)s of this file already updates the same customer.")),
    "import_plan_limit": TextKind(_("Not imported: the plan's customer limit is reached (updates of existing "
                                    "customers still apply).")),
    "import_not_phone": TextKind(_("“%(raw)s” is not a phone number.")),
    "import_invalid_phone": TextKind(_("“%(raw)s” is not a valid phone number.")),
    "import_not_email": TextKind(_("“%(raw)s” is not an e-mail address.")),
    "import_batch_clash": TextKind(_("Not imported: this batch clashed with a change made at the same time. Import "
                                     "the file again to pick these rows up.")),
    # task notes the system writes (crm.pipeline Task.note_kind / note_params)
    "tier_change_note": TextKind(_("Spend in the last 12 months: {spend_12m}; last full month: {spend_month}; trips "
                                   "in the last 12 months: {trips}."), braces=True,
                                 types={"spend_12m": "money", "spend_month": "money", "trips": "num"}),
    "outreach_note": TextKind(_("The service tier asks for a contact every {days} days; last contact: {last}."),
                              braces=True, types={"last": "day"}, empty={"last": pgettext_lazy("last contact", "never")}),
    "sla_note": TextKind(_("First response due %(due)s (%(tier)s: %(hours)d h)."), types={"due": "daytime"}),
    "win_back_dormant_note": TextKind(_("No trip since {last} after {trips} trips. Find out why they left, record "
                                        "the reason, and make them an offer."), braces=True, types={"last": "day"}),
    "win_back_declining_note": TextKind(_("A valuable customer who is travelling less ({trips} trips, last {last}). "
                                          "Find out why, record the reason, and make them an offer."), braces=True,
                                        types={"last": "day"}),
    "greeting_both_note": TextKind(_("The greeting e-mail goes to the customer; add a personal word by phone or "
                                     "message.")),
    "greeting_no_mail_note": TextKind(_("Get in touch personally: the customer cannot be e-mailed or has no e-mail "
                                        "address.")),
    "greeting_task_note": TextKind(_("Greet the customer personally, by phone or message.")),
    "suggestion_note": TextKind(_("Travelled at %(festival)s last year ({last}) and has nothing booked for this "
                                  "year's break (%(start)s – %(end)s). Customers who went there also went to: "
                                  "{suggested}."), mixed=True, choices={"festival": _PATHS["festival"]},
                                types={"start": "day", "end": "day"}),
    "referral_note": TextKind(_("{referred}, whom this customer referred, has booked a first trip. Thank the referrer "
                                "and record the reward on the referrals page."), braces=True),
    # what happened to an agency on the platform side (tenants.AgencyEvent, the console's history)
    "agency_onboarded": TextKind(_("Plan %(plan)s; first admin %(admin)s")),
    "agency_settings": TextKind(_("Changed: %(fields)s")),
    "agency_comped": TextKind(_("Free of charge"), note="note", note_sep=": "),
    "agency_comp_withdrawn": TextKind(_("No longer free of charge"), note="note", note_sep=": "),
    "agency_trial_extended": TextKind(_("Trial extended by %(days)s days")),
    "agency_credit": TextKind(_("Credit of %(amount)s %(currency)s on the next invoice: %(reason)s")),
    "agency_stripe_status": TextKind(_("Stripe status %(from)s → %(to)s")),
    "agency_export": TextKind(_("Export %(id)s")),
    "agency_restored": TextKind(_("From the export of %(slug)s made %(at)s")),
    "agency_deletion_due": TextKind(_("Due %(due)s"), note="note", note_sep=". "),
}


def _format(name):
    def run(value):
        from caravan import formatting

        return getattr(formatting, name)(value)
    return run


# Typed params (``TextKind.types``): stored as plain data (a decimal as text, an ISO date), shown
# with caravan.formatting in the reader's language (and the agency's currency and time zone).
_FORMATS = {name: _format(name) for name in ("money", "num", "day", "daytime")}


def _money_in(currency_param):
    """A "money" param in the currency another param names (the agency's when that one is empty)."""
    def run(value, values):
        from caravan import formatting

        return formatting.money(value, values.get(currency_param) or None)
    return run


class UnknownKind(KeyError):
    pass


def store(kind: str, /, **params) -> tuple[str, dict]:
    """What to save for a system text: its kind and its params (JSON data). An unknown kind or a
    missing param fails here, where the text is written, not later where it is read."""
    spec = KINDS.get(kind)
    if spec is None:
        raise UnknownKind(kind)
    if spec.note:
        params.setdefault(spec.note, "")
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
    for name, kind_of in spec.types.items():
        if values.get(name) not in (None, ""):
            try:
                if kind_of.startswith("money:"):  # in the currency of another param
                    values[name] = _money_in(kind_of[len("money:"):])(values[name], params)
                    continue
                values[name] = _FORMATS[kind_of](values[name])
            except (ValueError, TypeError, ArithmeticError):
                pass  # shown as stored
    for name, value in values.items():
        if value is None or value == "":
            values[name] = str(spec.empty[name]) if name in spec.empty else EMPTY
    try:
        text = spec.template_text() % values
        if spec.tail:
            text += ": " + spec.tail % values
        for name, line, line_tail in spec.lines:
            if params.get(name) not in (None, ""):
                text += "\n" + (str(line) % values + line_tail % values).rstrip()
    except (KeyError, TypeError, ValueError):
        return fallback
    if spec.note and params.get(spec.note):
        text += spec.note_sep + str(params[spec.note])
    return text


class Text:
    """A system text not saved yet (an import row's error): ``str()`` renders it in the active
    language; ``entry(...)`` gives what to save of it."""

    __slots__ = ("kind", "params")

    def __init__(self, kind: str, /, **params):
        self.kind, self.params = store(kind, **params)

    def __str__(self) -> str:
        return render(self.kind, self.params)

    def __repr__(self) -> str:
        return f"Text({self.kind!r}, {self.params!r})"


def entry(message) -> dict:
    """A message to save in a JSON list (``{"message", "text_kind", "text_params"}``): the text as
    written now (the fallback), plus its kind and params when the system wrote it."""
    if isinstance(message, Text):
        return {"message": str(message), "text_kind": message.kind, "text_params": message.params}
    return {"message": str(message)}


def entry_text(saved: dict) -> str:
    """A saved entry's message in the active language."""
    return display(saved.get("text_kind", ""), saved.get("text_params"), saved.get("message", ""))


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
            pattern, choice_codes, numbers = _pattern(kind, language)
            match = pattern.match(text)
            if match is None:
                continue
            params = {}
            for name, value in match.groupdict().items():
                if value is None:  # an optional note not given
                    value = ""
                if name in choice_codes:
                    value = choice_codes[name].get(value, value)
                elif name in numbers:
                    value = int(value)
                elif value == EMPTY or value in _empties(kind, name):
                    value = ""
                elif name in KINDS[kind].types:
                    value = _unformat(KINDS[kind].types[name], value)
                params[name] = value
            return kind, params
    return None


@lru_cache(maxsize=None)
def _pattern(kind: str, language: str):
    spec = KINDS[kind]
    with translation.override(language):
        template = spec.template_text()
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
    numbers = set()  # %(name)d: read back as a number
    seen = set()

    def group(match):
        name, conversion = match.group(1), match.group(2)
        if name in seen:
            return f"(?P={name})"
        seen.add(name)
        if conversion == "d":
            numbers.add(name)
        if name in choice_codes:
            return f"(?P<{name}>" + "|".join(re.escape(label) for label in sorted(choice_codes[name], key=len,
                                                                                        reverse=True)) + ")"
        return f"(?P<{name}>-?\\d+)" if conversion == "d" else f"(?P<{name}>.+?)"

    parts = re.split(r"(%\(\w+\)[sd])", full)
    regex = "".join(group(re.match(r"%\((\w+)\)([sd])", part)) if part.startswith("%(") else re.escape(part)
                    for part in parts)
    if spec.note:
        regex += f"(?:{re.escape(spec.note_sep)}(?P<{spec.note}>.*))?"
    return re.compile(f"^{regex}$", re.S), choice_codes, numbers


def _empties(kind: str, name: str) -> set:
    """What an empty param was written as, in the languages old rows were written in."""
    text = KINDS[kind].empty.get(name)
    if text is None:
        return set()
    found = set()
    for language in WRITTEN_IN:
        with translation.override(language):
            found.add(str(text))
    return found


def _unformat(kind_of: str, value: str):
    """A typed param read back from an old rendering: money and numbers as plain decimals ("CNY
    16,500.00" / "¥16,500.00" → "16500.00"); anything else (an ISO date) as written."""
    if kind_of.startswith("money") or kind_of == "num":
        plain = re.sub(r"[^\d.\-]", "", value.replace(",", ""))
        if re.fullmatch(r"-?\d+(\.\d+)?", plain):
            return plain
    return value


def _names(spec: TextKind) -> list[str]:
    with translation.override(None):  # the msgid
        template = spec.template_text()
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
