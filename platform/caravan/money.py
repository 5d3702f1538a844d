"""Money typed by people and programs: one parser, one maximum, one cent.

An amount is a ``Decimal``, an ``int`` or a plain decimal text (``"1234.50"``, ``"-20"``; spaces
around are ignored) with at most two decimals and at most :data:`MAX_AMOUNT` either way. Refused,
never rounded: floats (``0.1`` is not 0.1; a JSON number with a fraction arrives as one), exponents
(``"1e3"``), thousands separators, NaN, infinities, a third decimal.

:func:`to_money` is plain Python (the policy engine, which has no Django, can use it);
:func:`parse_money` is the one every service calls: a ``ValidationError`` keyed by the field, with the
sign rule of the field (Django is imported inside it only). Pages and the API read amounts with the
same rule before the service: ``caravan.forms.MoneyField``, ``caravan.api.fields.MoneyField``.
"""
import re
from decimal import Decimal, InvalidOperation

CENT = Decimal("0.01")
# The most a money column holds: DecimalField(max_digits=12, decimal_places=2) (crm.trips.models.MONEY).
MAX_AMOUNT = Decimal("9999999999.99")

_TEXT = re.compile(r"-?\d+(\.\d{1,2})?")


class MoneyError(ValueError):
    """Not an amount. ``too_large`` tells a well-formed amount beyond :data:`MAX_AMOUNT` apart."""

    def __init__(self, value, *, too_large: bool = False):
        super().__init__(f"{'too large' if too_large else 'not an amount'}: {str(value)[:40]!r}")
        self.too_large = too_large


def to_money(value) -> Decimal:
    """``value`` as a Decimal of whole cents; :class:`MoneyError` (a ``ValueError``) otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise MoneyError(value)
    if isinstance(value, str):
        if not _TEXT.fullmatch(value.strip()):
            raise MoneyError(value)
        value = Decimal(value.strip())
    amount = Decimal(value)
    if not amount.is_finite():
        raise MoneyError(value)
    if abs(amount) > MAX_AMOUNT:
        raise MoneyError(value, too_large=True)
    try:
        cents = amount.quantize(CENT)
    except InvalidOperation:  # more digits than the context holds
        raise MoneyError(value) from None
    if cents != amount:
        raise MoneyError(value)
    return cents if cents else abs(cents)  # never "-0.00"


def error_message(error: MoneyError) -> str:
    """What a person is told (translated) when :func:`to_money` refused their input."""
    from django.utils.translation import gettext as _

    if error.too_large:
        return _("The amount is too large.")
    return _("Give an amount such as 1234.50 (at most two decimals).")


def parse_money(value, *, field: str, allow_zero: bool = False, allow_negative: bool = False) -> Decimal:
    """An amount for ``field`` (more than zero unless ``allow_zero``, not negative unless
    ``allow_negative``), or a ``ValidationError`` ``{field: [message]}``."""
    from django.core.exceptions import ValidationError
    from django.utils.translation import gettext as _

    try:
        amount = to_money(value)
    except MoneyError as exc:
        raise ValidationError({field: [error_message(exc)]}) from None
    if amount < 0 and not allow_negative:
        raise ValidationError({field: [_("The amount cannot be negative.") if allow_zero
                                       else _("The amount must be more than zero.")]})
    if amount == 0 and not allow_zero:
        raise ValidationError({field: [_("The amount must be more than zero.")]})
    return amount
