"""The report period of the agency API: ``?from=&to=`` (dates, agency time; both optional)."""
from collections.abc import Callable
from datetime import date

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from django.utils.translation import gettext as _
from rest_framework import serializers

PERIOD_PARAMS = [OpenApiParameter("from", OpenApiTypes.DATE, description="First day (agency time); default: the report's"),
                 OpenApiParameter("to", OpenApiTypes.DATE, description="Last day, included; default today")]


def period_input(default_period: Callable[[], tuple[date, date]]) -> type[serializers.Serializer]:
    """A serializer reading ``from`` / ``to`` (``from`` is a Python keyword, so the fields are
    ``date_from`` / ``date_to``); a missing end is filled from ``default_period()``."""

    class PeriodInput(serializers.Serializer):
        date_from = serializers.DateField(required=False)
        date_to = serializers.DateField(required=False)

        def to_internal_value(self, data):
            given = {"date_from": data.get("from"), "date_to": data.get("to")}
            return super().to_internal_value({key: value for key, value in given.items() if value})

        def validate(self, data):
            default_from, default_to = default_period()
            data = {"date_from": data.get("date_from") or default_from, "date_to": data.get("date_to") or default_to}
            if data["date_from"] > data["date_to"]:
                raise serializers.ValidationError({"to": [_("The end of the period comes before its start.")]})
            return data

    return PeriodInput
