"""API fields that read input by a rule kept elsewhere, so the API and the services agree."""
from rest_framework import serializers

from caravan.money import MoneyError, error_message, to_money


class MoneyField(serializers.DecimalField):
    """An amount read by ``caravan.money`` (a string such as ``"1234.50"`` or an integer; a number
    with a fraction, an exponent or a third decimal is refused, never rounded; at most
    ``MAX_AMOUNT``), written as a string. ``min_value`` and the other options work as usual."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 12)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return to_money(data)
        except MoneyError as exc:
            raise serializers.ValidationError(error_message(exc), code="invalid") from None
