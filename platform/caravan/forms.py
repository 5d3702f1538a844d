"""Form helpers shared by the console and the agency pages."""
from collections.abc import Iterator
from contextlib import contextmanager

from django import forms
from django.core.exceptions import ValidationError

from caravan.money import MoneyError, error_message, to_money


def apply_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's ValidationError on the form's fields (unknown keys become form errors)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@contextmanager
def errors_onto(form: forms.Form) -> Iterator[None]:
    """The one "form → service → errors on the form" step of a page's POST.

    A ValidationError raised in the block (by the service) ends it and goes onto ``form``
    (``form.apply_service_errors`` when the form routes errors itself, else :func:`apply_errors`);
    the code after the block then shows the form again::

        if form.is_valid():
            with errors_onto(form):
                thing = services.thing_create(actor=request.user, **form.cleaned_data)
                messages.success(request, _("Saved."))
                return redirect("thing_detail", pk=thing.pk)
        return render(request, "thing_form.html", {"form": form}, status=400)
    """
    try:
        yield
    except ValidationError as exc:
        route = getattr(form, "apply_service_errors", None)
        if route is not None:
            route(exc)
        else:
            apply_errors(form, exc)


class MoneyField(forms.DecimalField):
    """An amount read by ``caravan.money``, as the services and the API read it (``"1e3"``, a third
    decimal, more than ``MAX_AMOUNT`` are refused with their messages); the widget is unchanged."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 12)
        kwargs.setdefault("decimal_places", 2)
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            return to_money(value)
        except MoneyError as exc:
            raise ValidationError(error_message(exc), code="invalid") from None
