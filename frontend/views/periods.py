"""The report period of the agency pages: from/to dates, each defaulting to the report's own."""
from collections.abc import Callable
from datetime import date

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from .customers import DATE_INPUT


def period_form(default_period: Callable[[], tuple[date, date]]) -> type[forms.Form]:
    """A form of ``date_from`` / ``date_to``; ``period()`` gives the chosen or default dates (the
    default ones when the form has errors, which the page shows next to the fields)."""

    class PeriodForm(forms.Form):
        date_from = forms.DateField(label=pgettext_lazy("date range", "From"), required=False, widget=DATE_INPUT)
        date_to = forms.DateField(label=pgettext_lazy("date range", "To"), required=False, widget=DATE_INPUT)

        def clean(self):
            data = super().clean()
            if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
                self.add_error("date_to", _("The end of the period comes before its start."))
            return data

        def period(self) -> tuple[date, date]:
            default_from, default_to = default_period()
            if not self.is_valid():
                return default_from, default_to
            return (self.cleaned_data.get("date_from") or default_from,
                    self.cleaned_data.get("date_to") or default_to)

    return PeriodForm
