"""The API's JSON parser (``DEFAULT_PARSER_CLASSES``): DRF's, refusing numbers JSON cannot mean.

``1e999999`` reads as infinity in Python and ``NaN``/``Infinity`` are not JSON; either reached a
serializer or the database and answered 500. Kept apart from the views and middleware so DRF's
settings can import it while they load.
"""
import codecs
import json
import math

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing numbers that overflow to infinity and NaN/Infinity literals."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            return json.load(codecs.getreader(encoding)(stream), parse_float=_finite, parse_constant=_no_constant)
        except ValueError as exc:
            raise ParseError(_("JSON parse error - %(error)s") % {"error": exc}) from None
