"""Issue 20: dates, times, money and numbers follow the agency's language and time zone everywhere,
through one layer (caravan.formatting and its template filters). (1) the layer in both languages
and two time zones, (2) no raw formatting left in templates and display code (an explicit allow-list),
(3) pages and an e-mail for an agency in Asia/Shanghai show the layer's strings."""
import re
from datetime import date, datetime, time, timezone as utc_zone
from decimal import Decimal
from pathlib import Path

import pytest
from django.template import Context, Template
from django.utils import timezone, translation

from caravan import formatting

ROOT = Path(__file__).resolve().parents[1]
AT = datetime(2026, 12, 6, 2, 14, tzinfo=utc_zone.utc)  # 10:14 in Shanghai, 21:14 the day before in New York


@pytest.mark.parametrize("language, zone, expected", [
    ("en", "Asia/Shanghai", {"day": "6 Dec 2026", "daytime": "6 Dec 2026, 10:14", "time": "10:14",
                             "month": "December 2026", "money": "CNY 2,624,529.00", "usd": "-USD 20.50",
                             "other": "THB 16,500.00"}),
    ("en", "America/New_York", {"day": "5 Dec 2026", "daytime": "5 Dec 2026, 21:14", "time": "21:14",
                                "month": "December 2026", "money": "CNY 2,624,529.00", "usd": "-USD 20.50",
                                "other": "THB 16,500.00"}),
    ("zh-hans", "Asia/Shanghai", {"day": "2026年12月6日", "daytime": "2026年12月6日 10:14", "time": "10:14",
                                  "month": "2026年12月", "money": "¥2,624,529.00", "usd": "-US$20.50",
                                  "other": "THB 16,500.00"}),
    ("zh-hans", "America/New_York", {"day": "2026年12月5日", "daytime": "2026年12月5日 21:14", "time": "21:14",
                                     "month": "2026年12月", "money": "¥2,624,529.00", "usd": "-US$20.50",
                                     "other": "THB 16,500.00"}),
])
def test_the_layer_in_both_languages_and_two_time_zones(language, zone, expected):
    with translation.override(language), timezone.override(zone):
        assert formatting.day(AT) == expected["day"]
        assert formatting.daytime(AT) == expected["daytime"]
        assert formatting.time_of_day(AT) == expected["time"]
        assert formatting.month(AT) == expected["month"]
        assert formatting.money(Decimal("2624529"), "CNY") == expected["money"]
        assert formatting.money("-20.5", "usd") == expected["usd"]
        assert formatting.money(16500, "THB") == expected["other"]
        # The raw texts stored parameters keep (ISO dates and moments, plain decimals) read the same.
        assert formatting.daytime("2026-12-06T02:14:00Z") == expected["daytime"]
        assert formatting.money("2624529.00", "CNY") == expected["money"]
        # A calendar day has no time zone: it never moves.
        assert formatting.day(date(2026, 12, 6)) == formatting.day("2026-12-06") == (
            "6 Dec 2026" if language == "en" else "2026年12月6日")
        assert formatting.time_of_day(time(14, 5)) == "14:05"
        assert formatting.num(2624529) == "2,624,529" and formatting.num(3.14159, 1) == "3.1"
        assert formatting.num(Decimal("0.5"), 0) == "1" and formatting.num(-0.001, 2) == "0.00"
        assert formatting.percent(12.5, 1) == "12.5%" and formatting.percent(None) == ""
        assert formatting.money(None) == formatting.day(None) == formatting.daytime("") == ""
        assert formatting.money(Decimal("-0.001"), "CNY") in ("CNY 0.00", "¥0.00")


def test_the_filters_match_the_functions_and_never_break_a_page():
    template = Template('{{ a|money:"CNY" }}|{{ at|daytime }}|{{ at|day }}|{{ at|time_of_day }}|{{ n|num }}|'
                        '{{ r|percent:1 }}|{{ at|date:"SHORT_DATETIME_FORMAT" }}|{{ bad|day }}|{{ none|money:"CNY" }}')
    context = Context({"a": Decimal("16500"), "at": AT, "n": 1234567, "r": 33.333, "bad": "not a date", "none": None})
    with translation.override("en"), timezone.override("Asia/Shanghai"):
        assert template.render(context) == ("CNY 16,500.00|6 Dec 2026, 10:14|6 Dec 2026|10:14|1,234,567|33.3%|"
                                            "6 Dec 2026, 10:14|not a date|")
    with translation.override("zh-hans"), timezone.override("Asia/Shanghai"):
        assert template.render(context) == ("¥16,500.00|2026年12月6日 10:14|2026年12月6日|10:14|1,234,567|33.3%|"
                                            "2026年12月6日 10:14|not a date|")
    # Inside {% timezone %} (e-mails name the agency's zone) the filters follow it.
    zoned = Template('{% load tz %}{% timezone "America/New_York" %}{{ at|daytime }}{% endtimezone %}')
    with translation.override("en"), timezone.override("Asia/Shanghai"):
        assert zoned.render(Context({"at": AT})) == "5 Dec 2026, 21:14"


def test_no_format_says_a_m_and_the_english_clock_is_24_hour():
    for language in ("en", "zh-hans"):
        with translation.override(language):
            for name in ("DATE_FORMAT", "DATETIME_FORMAT", "SHORT_DATE_FORMAT", "SHORT_DATETIME_FORMAT", "TIME_FORMAT"):
                rendered = Template('{{ at|date:"%s" }}' % name).render(Context({"at": datetime(2026, 12, 6, 14, 5)}))
                assert "m." not in rendered and "AM" not in rendered.upper().split()
                if "TIME" in name:
                    assert "14:05" in rendered, (language, name, rendered)


# --- (2) nothing formats around the layer ----------------------------------------------------------

SOURCE_ROOTS = ("accounts", "billing", "crm", "frontend", "integrations", "platform", "tenants")
LITERAL_DATE = re.compile(r"\|(?:date|time):[\"']([^\"']*)[\"']")
SETTING_NAME = re.compile(r"^[A-Z_]+_FORMAT$")
RAW_MONEY_TEMPLATE = [
    (re.compile(r"\|\s*(floatformat|intcomma)\b"), "floatformat/intcomma: use |money:currency, |num:2 or |percent"),
    (re.compile(r"\{\{\s*[\w.]*currency(\|upper)?\s*\}\}\s*\{\{|\}\}\s*(<small>)?\{\{\s*[\w.]*currency(\|upper)?\s*\}\}"),
     "an amount glued to its currency: use |money:currency"),
    (re.compile(r"a\.m\.|p\.m\."), "a.m./p.m.: times are 24-hour (|time_of_day)"),
    (re.compile(r"\|join:\s*[\"'],"), "a list joined with ', ': use |listing (、 in Chinese)"),
]
# Literal date formats that are for machines, not people.
ALLOWED_LITERAL_DATES = {
    ("frontend/templates/frontend/trips/detail.html", "Y-m-d"),  # a hidden input's value (ISO for the form)
    ("frontend/templates/frontend/customers/_contact.html", "c"),  # <time datetime="…">: ISO 8601
}
RAW_PYTHON = [
    (re.compile(r"%[-+ 0#,]*\d*\.\d+f|:[-+ 0#,]*\d*\.\d+f\}"), "fixed-point text: use formatting.num/money"),
    (re.compile(r"\b(?:date_format|number_format|time_format)\("), "Django's formats directly: use caravan.formatting"),
    (re.compile(r"[\"']a\.m\.|[\"']p\.m\."), "a.m./p.m."),
]
ALLOWED_PYTHON = {
    "platform/caravan/formatting.py": "the layer itself",
    "crm/trips/api.py": "the API's wire format for amounts (plain decimals)",
    "crm/policies/engine.py": "the Django-free policy engine writes 'CNY 1,234.50'; crm.policies.messages.reason "
                              "shows it through the layer in the reader's language",
    "platform/caravan/management/commands/migrate_platform.py": "seconds in an operator's terminal",
    "platform/caravan/metrics.py": "milliseconds in the access log",
    "platform/caravan/unpack.py": "megabytes in an upload error, not money or a date",
}


def _files(pattern: str):
    for root in SOURCE_ROOTS:
        for path in (ROOT / root).glob(pattern):
            if ".venv" not in path.parts and "migrations" not in path.parts:
                yield path


def test_templates_format_dates_money_and_numbers_only_through_the_layer():
    found = []
    for path in [*_files("**/templates/**/*.html"), *_files("**/templates/**/*.txt")]:
        relative = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for argument in LITERAL_DATE.findall(line):
                if not SETTING_NAME.match(argument) and (relative, argument) not in ALLOWED_LITERAL_DATES:
                    found.append(f"{relative}:{number}: |date/|time with {argument!r}: use |day, |daytime, "
                                 f"|time_of_day, |weekday or |month")
            for pattern, why in RAW_MONEY_TEMPLATE:
                if pattern.search(line):
                    found.append(f"{relative}:{number}: {why}")
    assert not found, "formatting outside caravan.formatting:\n" + "\n".join(found)


def test_display_code_formats_through_the_layer():
    found = []
    for path in _files("**/*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative in ALLOWED_PYTHON or "/tests/" in relative:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for pattern, why in RAW_PYTHON:
                if pattern.search(line):
                    found.append(f"{relative}:{number}: {why}: {line.strip()[:100]}")
    assert not found, "formatting outside caravan.formatting:\n" + "\n".join(found)


def test_the_allow_lists_name_files_that_exist():
    for relative in ALLOWED_PYTHON:
        assert (ROOT / relative).exists(), relative
    for relative, _argument in ALLOWED_LITERAL_DATES:
        assert (ROOT / relative).exists(), relative


# --- (3) what an agency in Asia/Shanghai sees --------------------------------------------------------

EN_DAY = r"\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}"
ZH_DAY = r"\d{4}年\d{1,2}月\d{1,2}日"
EN_MONEY = re.compile(r"CNY \d{1,3}(?:,\d{3})+\.\d{2}")  # grouped, two decimals, code first
RAW_MONEY = re.compile(r"\b\d{4,}\.\d{2}\b|\d CNY\b")  # "2624529.00", "… CNY"
US_DATE = re.compile(r"\b\d{2}/\d{2}/\d{4}\b")


def _zh(client):
    from django.conf import settings

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return client


def _page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def _visible(html: str) -> str:
    """The page without its script, style and attribute values (ids and JSON are for machines)."""
    html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    return re.sub(r"<[^>]*>", " ", html)


@pytest.mark.django_db
def test_the_value_page_shows_grouped_money_with_its_currency_in_both_languages(alpha, page_client):
    from django_tenants.utils import tenant_context

    from crm.value import services

    from .test_value_segments import ladder

    assert alpha.time_zone == "Asia/Shanghai" and alpha.currency == "CNY"
    with tenant_context(alpha):
        ladder()  # a former big customer: 10 trips of 20,000 → 195,000.00 margin
        services.value_run()
    english = _visible(_page(page_client("alpha", "manager"), "/value/"))
    assert "CNY 195,000.00" in english and EN_MONEY.search(english)
    assert not RAW_MONEY.search(english), RAW_MONEY.search(english)
    assert re.search(EN_DAY + r", \d{2}:\d{2}", english) and not US_DATE.search(english)  # "scored 6 Dec 2026, 10:14"
    assert "a.m." not in english and "p.m." not in english
    chinese = _visible(_page(_zh(page_client("alpha", "manager")), "/value/"))
    assert "¥195,000.00" in chinese and "CNY" not in chinese
    assert re.search(ZH_DAY + r" \d{2}:\d{2}", chinese) and not RAW_MONEY.search(chinese)
    customers = _visible(_page(page_client("alpha", "manager"), "/value/customers/"))
    assert EN_MONEY.search(customers) and not RAW_MONEY.search(customers)


@pytest.mark.django_db
def test_a_trip_page_and_its_quote_show_the_agencys_formats(alpha, page_client):
    from datetime import date as day_type

    from django_tenants.utils import tenant_context

    from crm.trips import services

    from .test_trips_services import trip_with_items

    with tenant_context(alpha):
        trip = trip_with_items(alpha, sell="16500.00", cost="12000.00", depart_on=day_type(2031, 6, 1),
                               return_on=day_type(2031, 6, 8))
        services.payment_record(actor=None, trip=trip, kind="deposit", amount="2624.50", method="bank",
                                received_on=day_type(2031, 1, 5))
    english = _visible(_page(page_client("alpha", "sales"), f"/trips/{trip.pk}/"))
    assert "CNY 16,500.00" in english and "CNY 2,624.50" in english and "CNY 13,875.50" in english  # sell, paid, due
    assert "1 Jun 2031" in english and "8 Jun 2031" in english and "27.3%" in english  # margin 4,500 of 16,500
    assert not RAW_MONEY.search(english) and not US_DATE.search(english)
    chinese = _visible(_page(_zh(page_client("alpha", "sales")), f"/trips/{trip.pk}/"))
    assert "¥16,500.00" in chinese and "2031年6月1日" in chinese and not RAW_MONEY.search(chinese)
    quote = _visible(_page(_zh(page_client("alpha", "sales")), f"/trips/{trip.pk}/quote/"))
    assert "¥16,500.00" in quote and "16,500.00" in quote and "2031年6月1日" in quote
    listed = _visible(_page(page_client("alpha", "sales"), "/trips/"))
    assert "CNY 16,500.00" in listed and "1 Jun 2031" in listed


@pytest.mark.django_db
def test_the_visit_list_shows_weekday_day_and_24_hour_time(alpha, page_client):
    from datetime import time as time_type

    from .test_visits import company, plan

    plan(alpha, company(alpha), time_of_day=time_type(14, 5))
    english = _visible(_page(page_client("alpha", "sales"), "/visits/"))
    assert re.search(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) " + EN_DAY + r", 14:05", english), english[-3000:]
    assert "14:05" in english and "2:05" not in english and "p.m." not in english
    chinese = _visible(_page(_zh(page_client("alpha", "sales")), "/visits/"))
    assert re.search(r"星期. " + ZH_DAY + r" 14:05", chinese)


@pytest.mark.django_db
def test_an_e_mail_is_written_in_the_agencys_time_zone_whatever_is_active(alpha, mailbox):
    from types import SimpleNamespace

    from caravan.mail import mail_each

    from .conftest import staff

    admin = staff(alpha, "admin")
    job = SimpleNamespace(done_rows=3, expires_at=AT)  # 02:14 UTC = 10:14 in Shanghai
    with timezone.override("UTC"), translation.override("en"):
        assert mail_each([admin], template="frontend/exports/email/ready", agency=alpha,
                         context={"job": job, "url": "https://alpha.example/x"}) == 1
        admin.language = "zh-hans"  # (not saved) the same e-mail to a reader of Chinese
        mail_each([admin], template="frontend/exports/email/ready", agency=alpha,
                  context={"job": job, "url": "https://alpha.example/x"})
    bodies = [message.get_payload(decode=True).decode() for message in mailbox]
    assert len(bodies) == 2
    assert "6 Dec 2026, 10:14" in bodies[0] and "02:14" not in bodies[0]
    assert "2026年12月6日 10:14" in bodies[1]


def _zone_and_time():
    return timezone.get_current_timezone_name(), formatting.daytime(AT)


@pytest.mark.django_db
def test_an_agency_task_runs_in_the_agencys_time_zone(alpha):
    from celery import shared_task
    from django_tenants.utils import tenant_context

    from caravan.tenancy.tasks import AgencyTask
    from tenants.models import Agency

    task = shared_task(base=AgencyTask, name="tests.formatting.zone_and_time")(_zone_and_time)
    Agency.objects.filter(pk=alpha.pk).update(time_zone="America/New_York")  # rolled back with the test
    with tenant_context(Agency.objects.get(pk=alpha.pk)), timezone.override("UTC"), translation.override("en"):
        assert task.apply().get() == ("America/New_York", "5 Dec 2026, 21:14")
        assert timezone.get_current_timezone_name() == "UTC"  # and puts the caller's zone back


def test_an_itinerary_items_stored_price_is_shown_through_the_layer():
    from crm.trips.models import ItineraryItem

    item = ItineraryItem(details={"room_type": "STD", "price": "1240.00 CNY", "note": "2 beds"})
    with translation.override("en"):
        assert item.details_shown == ["STD", "CNY 1,240.00", "2 beds"]
    with translation.override("zh-hans"):
        assert item.details_shown == ["STD", "¥1,240.00", "2 beds"]


def test_a_list_reads_with_the_languages_own_comma():
    from caravan import formatting

    with translation.override("en"):
        assert formatting.listing(["Passport", "Photos", ""]) == "Passport, Photos"
    with translation.override("zh-hans"):
        assert formatting.listing(["护照", "照片"]) == "护照、照片"
