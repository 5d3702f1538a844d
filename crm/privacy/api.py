"""Personal-data API: the access log (read only) and one customer's data export, admins only.

Thin: the pages use the same selectors and export (``frontend/views/privacy.py``).
"""
from django.http import FileResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from accounts.roles import Cap
from caravan.api.views import AgencyViewSet
from crm.customers.models import Customer

from . import export, selectors
from .models import AccessEntry


class AccessEntryOutput(serializers.ModelSerializer):
    user = serializers.SerializerMethodField()
    customer = serializers.SerializerMethodField()

    class Meta:
        model = AccessEntry
        fields = ["id", "at", "user", "customer", "what", "via", "detail", "request_id", "address"]

    def get_user(self, entry) -> dict | None:
        """``{id, full_name}`` of who accessed, null for someone deleted."""
        return {"id": entry.user.pk, "full_name": entry.user.full_name} if entry.user else None

    def get_customer(self, entry) -> dict | None:
        """``{id, name}``; null for an access to many customers (the list export)."""
        if entry.customer_id is None:
            return None
        return {"id": entry.customer_id, "name": entry.customer.name if entry.customer else None}


class AccessLogFilterInput(serializers.Serializer):
    customer = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    user = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    what = serializers.ChoiceField(choices=AccessEntry.What.choices, required=False)
    via = serializers.ChoiceField(choices=AccessEntry.Via.choices, required=False)
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)

    def validate(self, data):
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise serializers.ValidationError({"date_to": _("The end of the period comes before its start.")})
        return data


class AccessLogViewSet(AgencyViewSet):
    """Who accessed customers' personal data: card views, document reveals, exports; newest first."""

    serializer_class = AccessEntryOutput
    required_caps = {"list": Cap.ACCESS_LOG_VIEW}
    api_area = "customers"  # token scope customers:read (accounts.scopes)

    def agency_queryset(self):
        return AccessEntry.objects.all()

    @extend_schema(parameters=[AccessLogFilterInput])
    def list(self, request):
        data = AccessLogFilterInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        entries = selectors.access_log(**data.validated_data)
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(AccessEntryOutput(page, many=True).data)


class CustomerDataViewSet(AgencyViewSet):
    """``/personal-data/<customer id>/``: everything held about one customer, as a ZIP (data.json and files;
    docs/personal-data.md). Document numbers are in clear; the download is recorded in the access log."""

    required_caps = {"retrieve": Cap.PERSONAL_DATA_EXPORT}
    api_area = "customers"

    def agency_queryset(self):
        return Customer.objects.all()

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY},
                   parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="The customer's id.")])
    def retrieve(self, request, pk=None):
        name, archive = export.customer_data_export(actor=request.user, customer=self.get_object(),
                                                    via=AccessEntry.Via.API)
        response = FileResponse(archive, as_attachment=True, filename=name, content_type="application/zip")
        response["Cache-Control"] = "no-store"
        return response
