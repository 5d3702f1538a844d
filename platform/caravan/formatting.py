"""How dates, times, money and numbers are shown to people: one layer for pages, e-mails, the
console and printables (issue 20).

Everything follows the **active language** (``en`` or ``zh-hans``; formats in ``caravan.formats``)
and the **active time zone** (the agency's: ``AgencyContextMiddleware`` for requests,
``AgencyTask`` for tasks, ``mail_each`` for e-mail). Templates use the same functions as filters
(``caravan.templatetags.fmt``, a template builtin: ``{{ x|money:currency }}``, ``|num``, ``|percent``,
``|day``, ``|daytime``, ``|time_of_day``, ``|weekday``, ``|month``).

============  ===========================  ==========================
function      en                           zh-hans
============  ===========================  ==========================
money         CNY 16,500.00 · USD 12.50    ¥16,500.00 · US$12.50
num           2,624,529 · 3.5              2,624,529 · 3.5
percent       12.5%                        12.5%
day           6 Dec 2026                   2026年12月6日
daytime       6 Dec 2026, 14:05            2026年12月6日 14:05
time_of_day   14:05 (24-hour, never a.m.)  14:05
month         December 2026                2026年12月
weekday       Tue                          星期二
============  ===========================  ==========================

Values may be the Python objects or the raw texts kept in stored parameters: ``"16500.00"`` for an
amount, ``"2026-12-06"`` / ``"2026-12-06T06:05:00+00:00"`` for a day or a moment. ``None`` and
``""`` give ``""`` (a template adds ``|default:"—"``). A moment (an aware datetime) is shown in the
active time zone; a naive one as it is.

Exports (CSV/XLSX) are for machines and stay ISO dates and plain decimals; see
``crm/customers/exports.py``. This module is for people.
"""
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils import formats, timezone
from django.utils.translation import get_language

# In Chinese, the currencies a mainland agency meets get CLDR's zh symbols; any other shows its
# ISO code like in English. In English every currency shows its ISO code ("CNY 16,500.00"): "¥"
# alone is both yuan and yen to an English reader.
ZH_SYMBOLS = {"CNY": "¥", "USD": "US$", "EUR": "€", "GBP": "£", "JPY": "JP¥", "HKD": "HK$",
              "TWD": "NT$", "MOP": "MOP$", "KRW": "₩", "AUD": "A$", "CAD": "CA$"}
DEFAULT_CURRENCY = "CNY"


def _chinese() -> bool:
    return (get_language() or "").lower().startswith("zh")


def _decimal(value):
    """``value`` as a Decimal, ``None`` for nothing; a ValueError for anything not a number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"not a number: {str(value)[:40]!r}") from None


def _round(amount: Decimal, decimals: int) -> Decimal:
    rounded = amount.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return rounded if rounded else abs(rounded)  # never "-0.00"


def num(value, decimals=None) -> str:
    """A number with the language's thousands and decimal separators: ``decimals`` places
    (rounded half up), or as many as the value has when ``None``."""
    amount = _decimal(value)
    if amount is None:
        return ""
    if not amount.is_finite():
        return str(amount)
    if decimals is not None:
        amount = _round(amount, int(decimals))
    elif amount == amount.to_integral_value() and amount.as_tuple().exponent > 0:
        amount = amount.quantize(Decimal(1))  # 1E+3 → 1000
    return formats.number_format(amount, decimal_pos=decimals, force_grouping=True)


def percent(value, decimals=0) -> str:
    """``value`` already in percent (12.5 → "12.5%")."""
    text = num(value, decimals)
    return f"{text}%" if text else ""


def currency_of_agency() -> str:
    from caravan.tenancy import current_agency

    agency = current_agency()
    return (getattr(agency, "currency", "") or DEFAULT_CURRENCY).upper()


def money(amount, currency=None, *, decimals: int = 2) -> str:
    """An amount with its currency: en "CNY 16,500.00", zh-hans "¥16,500.00". ``currency`` defaults
    to the active agency's. Always two decimals (money columns hold cents)."""
    value = _decimal(amount)
    if value is None:
        return ""
    code = (str(currency or "").strip() or currency_of_agency()).upper()
    value = _round(value, decimals)
    body = num(abs(value), decimals)
    sign = "-" if value < 0 else ""
    if _chinese() and code in ZH_SYMBOLS and ZH_SYMBOLS[code] != code:
        return f"{sign}{ZH_SYMBOLS[code]}{body}"
    return f"{sign}{code} {body}"


def _moment(value):
    """A date, datetime or time from the object or its ISO text."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if len(text) == 10:
            return date.fromisoformat(text)
        if len(text) <= 8 and ":" in text:
            return time.fromisoformat(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value


def _blank(value) -> bool:
    return value is None or value == ""


def _local(value):
    if isinstance(value, datetime) and timezone.is_aware(value):
        return timezone.localtime(value)
    return value


def day(value) -> str:
    """The calendar day: "6 Dec 2026" / "2026年12月6日" (a moment: its day in the active time zone)."""
    value = _local(_moment(value))
    if _blank(value):
        return ""
    if isinstance(value, datetime):
        value = value.date()
    return formats.date_format(value, "DATE_FORMAT")


def daytime(value) -> str:
    """Day and time: "6 Dec 2026, 14:05" / "2026年12月6日 14:05", in the active time zone."""
    value = _local(_moment(value))
    if _blank(value):
        return ""
    if not isinstance(value, datetime):
        return day(value)
    return formats.date_format(value, "DATETIME_FORMAT")


def time_of_day(value) -> str:
    """"14:05" (24-hour in both languages); a moment in the active time zone."""
    value = _local(_moment(value))
    if _blank(value):
        return ""
    if isinstance(value, datetime):
        value = value.time()
    return formats.time_format(value, "TIME_FORMAT")


def weekday(value) -> str:
    """The day of the week, short: "Tue" / "星期二" (a moment: in the active time zone)."""
    value = _local(_moment(value))
    if _blank(value):
        return ""
    return formats.date_format(value, "D")


def month(value) -> str:
    """"December 2026" / "2026年12月"."""
    value = _local(_moment(value))
    if _blank(value):
        return ""
    return formats.date_format(value, "YEAR_MONTH_FORMAT")


def listing(items) -> str:
    """Items of a list in a sentence: "CA, MU" / "CA、MU" (Chinese lists take the enumeration comma)."""
    words = [str(item) for item in (items or []) if item not in (None, "")]
    return ("、" if (get_language() or "").startswith("zh") else ", ").join(words)
