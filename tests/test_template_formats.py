"""Dates in templates: a ``date``/``time`` filter takes either a format setting's name
(``SHORT_DATETIME_FORMAT``, localised) or format characters, never both — mixed, Django reads the
setting's name as format characters and prints garbage ("Tue th10+0800RCST…", issue 20)."""
import re
from datetime import datetime, timezone
from pathlib import Path

from django.template import Context, Template
from django.utils import translation

ROOT = Path(__file__).resolve().parents[1]
FILTER = re.compile(r"\|(?:date|time):[\"']([^\"']*)[\"']")
SETTING = re.compile(r"^[A-Z_]+_FORMAT$")


def test_no_template_mixes_format_characters_with_a_setting_name():
    mixed = []
    for path in [*ROOT.glob("frontend/templates/**/*.html"), *ROOT.glob("platform/*/templates/**/*.html"),
                 *ROOT.glob("*/templates/**/*.html")]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for argument in FILTER.findall(line):
                if "_FORMAT" in argument and not SETTING.match(argument):
                    mixed.append(f"{path.relative_to(ROOT)}:{number}: {argument!r}")
    assert not mixed, "format characters mixed with a setting name:\n" + "\n".join(mixed)


def test_a_visit_slot_prints_its_weekday_and_time():
    when = datetime(2026, 12, 8, 2, 14, tzinfo=timezone.utc)
    template = Template('{{ at|date:"D" }} {{ at|date:"SHORT_DATETIME_FORMAT" }}')
    with translation.override("en"):
        text = template.render(Context({"at": when}))
    assert text.startswith("Tue ") and "2026" in text and "RCST" not in text and "th" not in text.split()[0]


def test_no_filter_argument_looks_through_a_relation_that_may_be_empty():
    """``{{ x.owner.full_name|default:x.owner.email }}`` raises when ``owner`` is None (a filter's
    argument must resolve); a user is shown as ``{{ x.owner|default:"—" }}`` (User.__str__)."""
    pattern = re.compile(r"\.full_name\|default:[\w.]+\.email")
    found = []
    for path in [*ROOT.glob("frontend/templates/**/*.html"), *ROOT.glob("platform/*/templates/**/*.html"),
                 *ROOT.glob("crm/*/templates/**/*.html")]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}")
    assert not found, "\n".join(found)
