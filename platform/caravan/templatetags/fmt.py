"""Template filters over :mod:`caravan.formatting` (a template builtin: no ``{% load %}`` needed,
``{% load fmt %}`` works too).

``{{ trip.sell_total|money:trip.currency }}`` · ``{{ amount|money }}`` (the agency's currency) ·
``{{ n|num }}`` / ``{{ rate|num:1 }}`` · ``{{ share|percent:1 }}`` · ``{{ at|day }}`` ·
``{{ at|daytime }}`` · ``{{ at|time_of_day }}`` · ``{{ at|weekday }}`` · ``{{ on|month }}``.
A value that is not a number or a date shows as it is rather than failing the page."""
from django import template

from caravan import formatting

register = template.Library()


def _safely(function, value, *args):
    try:
        return function(value, *args)
    except (ValueError, TypeError, AttributeError):
        return "" if value is None else value


@register.filter
def money(value, currency=None):
    return _safely(formatting.money, value, currency)


@register.filter
def num(value, decimals=None):
    return _safely(formatting.num, value, decimals)


@register.filter
def percent(value, decimals=0):
    return _safely(formatting.percent, value, decimals)


@register.filter(expects_localtime=False)
def day(value):
    return _safely(formatting.day, value)


@register.filter(expects_localtime=False)
def daytime(value):
    return _safely(formatting.daytime, value)


@register.filter(expects_localtime=False)
def time_of_day(value):
    return _safely(formatting.time_of_day, value)


@register.filter(expects_localtime=False)
def month(value):
    return _safely(formatting.month, value)


@register.filter(expects_localtime=False)
def weekday(value):
    return _safely(formatting.weekday, value)


@register.filter
def listing(value):
    return _safely(formatting.listing, value)
