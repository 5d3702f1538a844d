"""Personal fields in campaign e-mails, and the HTML part made from the plain-text body.

Templates are plain text with placeholders ``{{ field }}`` or ``{{ field|default:"text" }}``, and
nothing else: no tags, no attribute access, no filters but ``default``. Rendering is a regular
expression substitution over a fixed dictionary of values, so a template cannot reach anything but
the fields below, and values are escaped where they end up in HTML. Unknown fields are refused
when the template is saved (``placeholder_errors``), with the field names staff can use.

The HTML part: the rendered text, escaped, paragraphs and line breaks kept, and every link that is
written in the template itself (``template_links``) replaced by a tracked link that points back at
``/c/l/…`` with its position in that list. The click page redirects only to a link of that list,
never to an address taken from the request (no open redirect).
"""
import re
from html import escape

from django.utils.translation import gettext_lazy as _

FIELDS = {
    "name": _("the customer's name as written, e.g. 王芳"),
    "first_name": _("given name from the passport spelling if known, else the first word of the name"),
    "owner_name": _("the customer's account manager"),
    "last_destination": _("destination of the customer's latest trip"),
    "agency_name": _("your agency's name"),
}

PLACEHOLDER = re.compile(r'\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|\s*default\s*:\s*"([^"{}]*)"\s*)?\}\}')
ANY_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}|\{%.*?%\}", re.S)
URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&*+,;=%()]+")
_TRAILING = ".,;:!?)]"


def placeholder_errors(text: str) -> list[str]:
    """What is wrong with the placeholders of ``text`` (empty when all is well)."""
    errors, unknown = [], []
    for match in ANY_PLACEHOLDER.finditer(text or ""):
        whole = match.group(0)
        strict = PLACEHOLDER.fullmatch(whole)
        if strict is None:
            errors.append(_("“%(text)s” is not a personal field; write e.g. {{ first_name }} or "
                            "{{ last_destination|default:\"Japan\" }}.") % {"text": whole[:60]})
        elif strict.group(1) not in FIELDS:
            unknown.append(strict.group(1))
    if unknown:
        errors.append(_("Unknown personal field: %(fields)s. Use %(known)s.") % {
            "fields": ", ".join(sorted(set(unknown))), "known": ", ".join("{{ %s }}" % f for f in FIELDS)})
    if "{{" in PLACEHOLDER.sub("", ANY_PLACEHOLDER.sub("", text or "")):
        errors.append(_("A personal field is not closed with }}."))
    return errors


def render(text: str, values: dict) -> str:
    """``text`` with each placeholder replaced by its value (or its default when the value is empty)."""
    return PLACEHOLDER.sub(lambda m: str(values.get(m.group(1)) or m.group(2) or ""), text)


def subject_line(text: str, values: dict) -> str:
    """A rendered subject on one line (a header cannot hold line breaks)."""
    return " ".join(render(text, values).split())[:250]


def _links(text: str) -> list[str]:
    out = []
    for match in URL.finditer(text):
        url = match.group(0).rstrip(_TRAILING)
        if url.count("(") < url.count(")"):
            url = url.rstrip(")")
        out.append(url)
    return out


def template_links(body: str) -> list[str]:
    """The links written in a template body, in order, each once (those with a field inside left out)."""
    text, seen = PLACEHOLDER.sub("\0", body), []
    for match in URL.finditer(text):
        if text[match.end():match.end() + 1] == "\0":
            continue  # a personal field continues the link: it differs per customer, it is not tracked
        for url in _links(match.group(0)):
            if url not in seen:
                seen.append(url)
    return seen


def html_body(text: str, *, tracked: dict[str, str], footer_html: str, pixel_url: str | None) -> str:
    """The HTML part for the rendered ``text``. ``tracked`` maps a link of the template to its tracked URL."""
    out, last = [], 0
    for match in URL.finditer(text):
        url = match.group(0)
        stripped = url.rstrip(_TRAILING)
        if stripped.count("(") < stripped.count(")"):
            stripped = stripped.rstrip(")")
        end = match.start() + len(stripped)
        out.append(escape(text[last:match.start()]))
        href = tracked.get(stripped, stripped)
        out.append(f'<a href="{escape(href)}">{escape(stripped)}</a>')
        last = end
    out.append(escape(text[last:]))
    paragraphs = re.split(r"\n\s*\n", "".join(out).replace("\r\n", "\n").strip())
    body = "\n".join(f"<p>{p.replace(chr(10), '<br>')}</p>" for p in paragraphs if p.strip())
    pixel = f'<img src="{escape(pixel_url)}" width="1" height="1" alt="" style="border:0">' if pixel_url else ""
    return ('<!doctype html><html><head><meta charset="utf-8"></head>'
            '<body style="font-family:sans-serif;line-height:1.5;color:#222">'
            f'{body}<hr style="border:0;border-top:1px solid #ddd;margin-top:2em">'
            f'<p style="font-size:12px;color:#777">{footer_html}</p>{pixel}</body></html>')


def first_name(name: str, latin_given: str) -> str:
    """The passport given name if we have it; else the first word of the name (a Chinese name,
    written without spaces, stays whole: 王芳 is greeted as 王芳)."""
    if latin_given.strip():
        return latin_given.strip().split()[0].title()
    parts = name.split()
    return parts[0] if parts else ""
