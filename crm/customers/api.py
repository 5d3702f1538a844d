"""Customer 360 API (R-CUST): customers and their cards, contact timeline, history, documents,
merge, bulk actions, handover, the call-center screen pop and the CSV export.

Thin by design: serializers read the request, ``crm.customers.services`` and ``crm.customers.selectors`` do the work.
A duplicate phone, e-mail or document answers 409 with the customers already on file.
"""
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import User
from accounts.roles import Cap
from caravan.api.errors import conflict_response
from caravan.api.views import AgencyAPIView, AgencyViewSet

from . import list_filters, selectors, services
from . import exports
from .api_exports import CustomerExportOutput
from .exports import export_customers_csv
from .hooks import Seen, SeenVia, customer_data_seen
from .models import ChangeLog, Contact, Customer, Preferences, TravelDocument
from .normalize import phone_display
from .snapshot import CREATED, created_values

Via = ChangeLog.Via


def customer_url(customer: Customer) -> str:
    return customer_path(customer.pk)


def customer_path(pk: int) -> str:
    return f"/customers/{pk}/"


def _conflict(exc: services.DuplicateCustomer) -> Response:
    existing = [{"id": c.pk, "name": c.name, "reason": str(reason), "url": customer_url(c)}
                for c, reason in exc.matches]
    return conflict_response(_("This customer may already exist."), existing)


def _staff():
    return User.objects.filter(is_active=True)


# --- output ---------------------------------------------------------------------------------------

class UserRef(serializers.Serializer):
    id = serializers.IntegerField()
    full_name = serializers.CharField()


class CustomerRef(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    latin_name = serializers.CharField()


class PhoneOutput(serializers.Serializer):
    number = serializers.CharField(help_text="E.164")
    display = serializers.SerializerMethodField()
    label = serializers.CharField()

    def get_display(self, phone) -> str:
        return phone_display(phone.number)


class EmailOutput(serializers.Serializer):
    address = serializers.CharField()
    label = serializers.CharField()


class AddressSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=30, required=False, allow_blank=True, default="")
    line = serializers.CharField(max_length=300)
    city = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    postcode = serializers.CharField(max_length=20, required=False, allow_blank=True, default="")
    country = serializers.CharField(min_length=2, max_length=2, required=False, default="CN")

    def validate_country(self, value: str) -> str:
        return value.upper()


class FamilyDateOutput(serializers.Serializer):
    label = serializers.CharField()
    date = serializers.DateField()


class _EmploymentFacts(serializers.Serializer):
    job_grade = serializers.CharField()
    department = serializers.CharField()
    title = serializers.CharField()
    is_booker = serializers.BooleanField()
    is_traveler = serializers.BooleanField()
    active = serializers.BooleanField()


class EmploymentOutput(_EmploymentFacts):
    """A person's place at a company, seen from the person."""

    company = CustomerRef()


class StaffLinkOutput(_EmploymentFacts):
    """A company's traveler or booker, seen from the company."""

    person = CustomerRef()


class PreferencesSerializer(serializers.ModelSerializer):
    class Meta:
        model = Preferences
        fields = ["airlines", "seat", "meal", "cabin", "aircraft_size", "hotel_chains", "room_type", "interests",
                  "price_sensitivity", "budget_per_trip"]
        extra_kwargs = {name: {"required": False} for name in fields}


class LoyaltyOutput(serializers.Serializer):
    programme = serializers.CharField()
    number = serializers.CharField()
    tier = serializers.CharField()


class DocumentOutput(serializers.ModelSerializer):
    expiry = serializers.SerializerMethodField(help_text="expired, expiring (within six months) or empty")

    class Meta:
        model = TravelDocument
        fields = ["id", "kind", "issuing_country", "masked", "valid_for", "issued_on", "expires_on", "expiry"]

    def get_expiry(self, document) -> str:
        return services.document_expiry(document)


def tier_name(customer: Customer) -> str | None:
    """The name of the customer's service tier in force (crm.tiers), or None."""
    status = getattr(customer, "tier_status", None)  # a missing one-to-one raises AttributeError
    return status.tier.name if status is not None and status.tier_id else None


class CustomerRowOutput(serializers.ModelSerializer):
    """One compact line of the customer list."""

    latin_name = serializers.CharField(read_only=True)
    owner = UserRef(allow_null=True)
    phone = serializers.SerializerMethodField(help_text="The first phone, formatted for display.")
    email = serializers.SerializerMethodField()
    companies = serializers.SerializerMethodField()
    tier = serializers.SerializerMethodField(help_text="Name of the service tier in force, if any.")

    class Meta:
        model = Customer
        fields = ["id", "kind", "name", "latin_name", "owner", "tags", "phone", "email", "companies", "tier"]

    def get_tier(self, customer) -> str | None:
        return tier_name(customer)

    def get_phone(self, customer) -> str | None:
        phone = next(iter(customer.phones.all()), None)
        return phone_display(phone.number) if phone else None

    def get_email(self, customer) -> str | None:
        email = next(iter(customer.emails.all()), None)
        return email.address if email else None

    @extend_schema_field(CustomerRef(many=True))
    def get_companies(self, customer) -> list:
        return [{"id": e.company_id, "name": e.company.name, "latin_name": e.company.latin_name}
                for e in customer.employments.all()]


def _row_output(row: dict) -> dict:
    """``CustomerRowOutput`` of a ``selectors.customer_rows`` line (the same JSON, without the serializer)."""
    row["phone"] = phone_display(row["phone"]) if row["phone"] is not None else None
    return row


def _search_only(filters: dict, params) -> str:
    """The search term of a list request that is nothing but a search (``q`` or ``search``, no other filter,
    no ``ordering``), else ''."""
    if params.get("ordering") or any(value for key, value in filters.items() if key != "q"):
        return ""
    q, search = filters.get("q") or "", params.get("search", "").strip()
    return "" if q and search else q or search


class CardOutput(serializers.ModelSerializer):
    """Everything the customer card shows. ``documents`` only for roles that may see them."""

    latin_name = serializers.CharField(read_only=True)
    owner = UserRef(allow_null=True)
    phones = PhoneOutput(many=True)
    emails = EmailOutput(many=True)
    addresses = AddressSerializer(many=True)
    family_dates = FamilyDateOutput(many=True)
    employments = EmploymentOutput(many=True, help_text="For a person: the companies they travel or book for.")
    staff_links = StaffLinkOutput(many=True, help_text="For a company: its travelers and bookers.")
    preferences = serializers.SerializerMethodField()
    loyalty = LoyaltyOutput(many=True)
    documents = DocumentOutput(many=True, required=False,
                               help_text="Present only for roles with documents.view; numbers masked.")
    tier = serializers.SerializerMethodField(help_text="Name of the service tier in force, if any.")

    class Meta:
        model = Customer
        fields = ["id", "kind", "name", "latin_surname", "latin_given", "latin_name", "gender", "birthday", "language",
                  "source", "owner", "tags", "notes", "industry", "external_ref", "created_at", "updated_at",
                  "merged_into", "phones", "emails", "addresses", "family_dates", "employments", "staff_links",
                  "preferences", "loyalty", "documents", "tier"]

    def get_tier(self, customer) -> str | None:
        return tier_name(customer)

    def to_representation(self, customer):
        data = super().to_representation(customer)
        if not self.context["request"].user.can(Cap.DOCUMENTS_VIEW):
            del data["documents"]
        return data

    @extend_schema_field(PreferencesSerializer(allow_null=True))
    def get_preferences(self, customer):
        preferences = getattr(customer, "preferences", None)  # a missing one-to-one raises AttributeError
        return PreferencesSerializer(preferences).data if preferences else None


class ContactOutput(serializers.ModelSerializer):
    staff = UserRef(allow_null=True)
    summary = serializers.CharField(source="display_summary", read_only=True,
                                    help_text="In the request's language when the system wrote it (see text_kind).")
    text_kind = serializers.CharField(read_only=True,
                                      help_text="The kind of an entry the system wrote (blank: written by a person).")

    class Meta:
        model = Contact
        fields = ["id", "at", "channel", "direction", "summary", "text_kind", "next_step", "next_step_due", "resolved",
                  "staff"]


class ChangeOutput(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="email", read_only=True, allow_null=True)
    values = serializers.SerializerMethodField(
        help_text="For `field` = `created` (the record's creation, one entry): every value it was created with, "
                  "by field (`new` holds the same as JSON text). Null for every other entry.")

    class Meta:
        model = ChangeLog
        fields = ["id", "at", "actor", "via", "field", "old", "new", "values"]

    @extend_schema_field(serializers.DictField(child=serializers.CharField(), allow_null=True))
    def get_values(self, change: ChangeLog) -> dict | None:
        return created_values(change.new) if change.field == CREATED else None


class ConflictOutput(serializers.Serializer):
    """409: ``{"error": {"code": "conflict", "message": …, "existing": [{id, name, reason, url}]}}`` for a
    duplicate, ``{"error": {"code": "conflict", "message": …, "survivor": {id, name, url}}}`` for a write
    to a merged-away customer."""

    error = serializers.DictField()


_DUPLICATE = "The phone, e-mail or document number is already on file (`existing`)."
_MERGED = "The customer was merged into another (`survivor`): make the change there; nothing was written."
CONFLICT = OpenApiResponse(ConflictOutput, description=_DUPLICATE)
MERGED = OpenApiResponse(ConflictOutput, description=_MERGED)
CONFLICT_OR_MERGED = OpenApiResponse(ConflictOutput, description=f"{_DUPLICATE} Or: {_MERGED}")


# --- input ----------------------------------------------------------------------------------------

class CustomerInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Customer.Kind.choices, required=False)
    name = serializers.CharField(max_length=200)
    latin_surname = serializers.CharField(max_length=100, required=False, allow_blank=True)
    latin_given = serializers.CharField(max_length=100, required=False, allow_blank=True)
    gender = serializers.ChoiceField(choices=Customer._meta.get_field("gender").choices, required=False,
                                     allow_blank=True)
    birthday = serializers.DateField(required=False, allow_null=True)
    language = serializers.ChoiceField(choices=settings.LANGUAGES, required=False)
    source = serializers.ChoiceField(choices=Customer.Source.choices, required=False)
    owner = serializers.PrimaryKeyRelatedField(queryset=_staff(), required=False, allow_null=True,
                                               help_text="User id of the account manager.")
    tags = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
    notes = serializers.CharField(required=False, allow_blank=True)
    industry = serializers.CharField(max_length=100, required=False, allow_blank=True)
    phones = serializers.ListField(child=serializers.CharField(max_length=40, allow_blank=True), required=False,
                                   help_text="Any format; stored as E.164.")
    emails = serializers.ListField(child=serializers.CharField(max_length=254, allow_blank=True), required=False)
    addresses = AddressSerializer(many=True, required=False)


class CustomerFilterInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Customer.Kind.choices, required=False)
    owner = serializers.IntegerField(required=False, help_text="User id of the account manager.")
    unowned = serializers.BooleanField(required=False, default=False)
    source = serializers.ChoiceField(choices=Customer.Source.choices, required=False)
    tag = serializers.CharField(required=False)
    company = serializers.IntegerField(required=False, help_text="Customer id of a company: its people.")
    tier = serializers.IntegerField(required=False, help_text="Service tier id: the customers in that tier now.")
    q = serializers.CharField(required=False, help_text="Name, phone in any format, e-mail, document tail.")

    def get_fields(self):
        """The fields above, with the other apps' filters (crm.customers.list_filters) before ``q``."""
        fields = super().get_fields()
        q = fields.pop("q")
        for extra in list_filters.registered():
            fields[extra.key] = _extra_filter_field(extra)
        fields["q"] = q
        return fields

    def validate(self, data):
        user = self.context.get("user")
        if user is not None:
            refused = {f.key: [str(f.refused)] for f in list_filters.registered()
                       if f.cap and f.key in data and not user.can(f.cap)}
            if refused:
                raise serializers.ValidationError(refused)
        return data


def _extra_filter_field(extra: list_filters.ListFilter) -> serializers.Field:
    if extra.choices:
        return serializers.ChoiceField(choices=extra.choices, required=False, help_text=extra.help)
    if extra.pattern:
        return serializers.RegexField(extra.pattern, required=False, help_text=extra.help)
    return serializers.CharField(required=False, help_text=extra.help)


class ContactInput(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Contact.Channel.choices)
    direction = serializers.ChoiceField(choices=Contact.Direction.choices, required=False,
                                        default=Contact.Direction.OUTBOUND)
    summary = serializers.CharField()
    next_step = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    next_step_due = serializers.DateField(required=False, allow_null=True, default=None)
    at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class DocumentInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TravelDocument.Kind.choices)
    issuing_country = serializers.CharField(max_length=2)
    number = serializers.CharField(max_length=40)
    valid_for = serializers.CharField(max_length=2, required=False, allow_blank=True, default="")
    issued_on = serializers.DateField(required=False, allow_null=True, default=None)
    expires_on = serializers.DateField(required=False, allow_null=True, default=None)


class RevealOutput(serializers.Serializer):
    number = serializers.CharField()


class MergeInput(serializers.Serializer):
    drop = serializers.IntegerField(help_text="Id of the customer joined into this one; it stays as a pointer.")


class BulkInput(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), allow_empty=False, max_length=5000)
    owner = serializers.PrimaryKeyRelatedField(queryset=_staff(), required=False, allow_null=True, default=None)
    add_tag = serializers.CharField(max_length=40, required=False, allow_blank=True, default="")

    def validate(self, data):
        if data["owner"] is None and not data["add_tag"].strip():
            raise serializers.ValidationError(_("Choose an account manager or a tag."))
        return data


class BulkOutput(serializers.Serializer):
    updated = serializers.IntegerField()


class SimilarInput(serializers.Serializer):
    name = serializers.CharField()


class HandoverInput(serializers.Serializer):
    from_user = serializers.PrimaryKeyRelatedField(queryset=User.objects.all())
    to_users = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), many=True, allow_empty=False)


class HandoverOutput(serializers.Serializer):
    moved = serializers.DictField(child=serializers.IntegerField(), help_text="{user id: number of customers}")


# --- customers ------------------------------------------------------------------------------------

FILTER_PARAMS = [
    OpenApiParameter("kind", str, enum=Customer.Kind.values),
    OpenApiParameter("owner", int, description="User id of the account manager."),
    OpenApiParameter("unowned", bool),
    OpenApiParameter("source", str, enum=Customer.Source.values),
    OpenApiParameter("tag", str),
    OpenApiParameter("company", int, description="Customer id of a company: its people."),
    OpenApiParameter("tier", int, description="Service tier id: the customers in that tier now."),
    *(OpenApiParameter(f.key, str, enum=[value for value, _label in f.choices] or None, description=f.help)
      for f in list_filters.registered()),  # read when this module is imported: after every app's ready()
    OpenApiParameter("q", str, description="Name (Chinese or Latin), phone in any format, e-mail, document tail. "
                                           "Best matches first (at most 500) unless `ordering` is given."),
]


class CustomerViewSet(AgencyViewSet):
    """Customers (people and companies) of this agency."""

    serializer_class = CustomerRowOutput
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["name"]
    required_caps = {
        "list": Cap.CUSTOMERS_VIEW, "retrieve": Cap.CUSTOMERS_VIEW, "similar": Cap.CUSTOMERS_VIEW,
        "contacts": Cap.CUSTOMERS_VIEW, "history": Cap.CUSTOMERS_VIEW,
        "create": Cap.CUSTOMERS_EDIT, "partial_update": Cap.CUSTOMERS_EDIT, "contacts_add": Cap.CUSTOMERS_EDIT,
        "documents": Cap.CUSTOMERS_EDIT, "preferences": Cap.CUSTOMERS_EDIT,
        "merge": Cap.CUSTOMERS_MANAGE, "bulk": Cap.CUSTOMERS_MANAGE,
        "export": Cap.CUSTOMERS_IMPORT,
    }

    def agency_queryset(self):
        # Detail actions find merged-away records too: their card says where they went, and a write
        # to one is refused by the service (MergedAway: 409 naming the survivor).
        return Customer.objects.all()

    def _filtered_list(self):
        return selectors.customer_list(filters=self._list_filters())

    def _list_filters(self) -> dict:
        data = CustomerFilterInput(data=self.request.query_params, context={"user": self.request.user})
        data.is_valid(raise_exception=True)
        return dict(data.validated_data)

    def _card(self, customer: Customer, status_code: int = status.HTTP_200_OK) -> Response:
        card = selectors.customer_card(pk=customer.pk)
        return Response(CardOutput(card, context=self.get_serializer_context()).data, status=status_code)

    def search_queryset(self, queryset, term):
        """``search`` (caravan.api.filters): the list page's search, like ``q``."""
        return selectors.customers_matching(queryset, term)

    @extend_schema(parameters=FILTER_PARAMS, responses=CustomerRowOutput(many=True))
    def list(self, request):
        """The page's ids, then its lines in one statement (``selectors.customer_rows``, the shape of
        ``CustomerRowOutput``). A request that is only a search (as typed in a search box) pages the search's
        own ranked ids: they are live customers already, so neither a count nor a page query is needed."""
        filters = self._list_filters()
        term = _search_only(filters, request.query_params)
        if term:
            ids = selectors.customer_search_ids(query=term, limit=selectors.SEARCH_LIST_LIMIT)
        else:
            searched = request.query_params.get("q") or request.query_params.get("search")
            if searched and not request.query_params.get("ordering"):
                self.ordering = None  # a search lists the best matches first
            ids = self.filter_queryset(selectors.customer_list(filters=filters)).values_list("pk", flat=True)
        page = self.paginate_queryset(ids)
        return self.get_paginated_response([_row_output(row) for row in selectors.customer_rows(ids=page)])

    @extend_schema(request=CustomerInput, responses={201: CardOutput, 409: CONFLICT})
    def create(self, request):
        data = CustomerInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            customer = services.customer_create(actor=request.user, via=Via.API, **data.validated_data)
        except services.DuplicateCustomer as exc:
            return _conflict(exc)
        return self._card(customer, status.HTTP_201_CREATED)

    @extend_schema(responses=CardOutput)
    def retrieve(self, request, pk=None):
        customer = self.get_object()
        customer_data_seen(user=request.user, customer=customer, what=Seen.CARD_VIEW, via=SeenVia.API)
        return self._card(customer)

    @extend_schema(request=CustomerInput, responses={200: CardOutput, 409: CONFLICT_OR_MERGED})
    def partial_update(self, request, pk=None):
        customer = self.get_object()
        data = CustomerInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            customer = services.customer_update(actor=request.user, via=Via.API, customer=customer,
                                                **data.validated_data)
        except services.DuplicateCustomer as exc:
            return _conflict(exc)
        return self._card(customer)

    @extend_schema(responses=ContactOutput(many=True))
    @action(detail=True, methods=["get"], paginated=True)
    def contacts(self, request, pk=None):
        """The contact timeline, newest first."""
        customer = self.get_object()
        customer_data_seen(user=request.user, customer=customer, what=Seen.API_READ, via=SeenVia.API,
                           detail="contacts")
        queryset = Contact.objects.filter(customer=customer).select_related("staff")
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(ContactOutput(page, many=True).data)

    @extend_schema(request=ContactInput, responses={201: ContactOutput, 409: MERGED})
    @contacts.mapping.post
    def contacts_add(self, request, pk=None):
        customer = self.get_object()
        data = ContactInput(data=request.data)
        data.is_valid(raise_exception=True)
        contact = services.contact_add(actor=request.user, customer=customer, **data.validated_data)
        return Response(ContactOutput(contact).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=ChangeOutput(many=True))
    @action(detail=True, methods=["get"], paginated=True)
    def history(self, request, pk=None):
        """Who changed which identity or contact field, from what to what."""
        customer = self.get_object()
        customer_data_seen(user=request.user, customer=customer, what=Seen.HISTORY_VIEW, via=SeenVia.API)
        queryset = ChangeLog.objects.filter(customer=customer).select_related("actor")
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(ChangeOutput(page, many=True).data)

    @extend_schema(request=DocumentInput, responses={201: DocumentOutput, 409: CONFLICT_OR_MERGED})
    @action(detail=True, methods=["post"])
    def documents(self, request, pk=None):
        """Add a travel document; the number is stored encrypted and answered masked."""
        if not request.user.can(Cap.DOCUMENTS_VIEW):
            raise PermissionDenied
        customer = self.get_object()
        data = DocumentInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            document = services.document_add(actor=request.user, customer=customer, via=Via.API,
                                             **data.validated_data)
        except services.DuplicateCustomer as exc:
            return _conflict(exc)
        return Response(DocumentOutput(document).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PreferencesSerializer, responses={200: PreferencesSerializer, 409: MERGED})
    @action(detail=True, methods=["put"])
    def preferences(self, request, pk=None):
        """Set the structured travel preferences; fields left out keep their value."""
        customer = self.get_object()
        data = PreferencesSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        preferences = services.customer_preferences_set(actor=request.user, customer=customer, via=Via.API,
                                                       **data.validated_data)
        return Response(PreferencesSerializer(preferences).data)

    @extend_schema(request=MergeInput, responses={200: CardOutput, 409: MERGED})
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        """Join ``drop`` into this customer; answers the merged card."""
        keep = self.get_object()
        data = MergeInput(data=request.data)
        data.is_valid(raise_exception=True)
        drop = get_object_or_404(Customer, pk=data.validated_data["drop"])
        return self._card(services.customer_merge(actor=request.user, keep=keep, drop=drop, via=Via.MERGE))

    @extend_schema(parameters=[OpenApiParameter("name", str, required=True)], responses=CustomerRef(many=True))
    @action(detail=False, methods=["get"])
    def similar(self, request):
        """Possible duplicates by name, before creating a customer."""
        data = SimilarInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        found = selectors.similar_customers(name=data.validated_data["name"])
        return Response(CustomerRef(found, many=True).data)

    @extend_schema(request=BulkInput, responses={200: BulkOutput, 409: MERGED})
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        """Assign an account manager and/or add a tag to many customers (audited per customer)."""
        data = BulkInput(data=request.data)
        data.is_valid(raise_exception=True)
        customers = Customer.objects.filter(pk__in=data.validated_data["ids"])
        updated = services.customers_bulk_update(actor=request.user, via=Via.BULK, customers=customers,
                                                 owner=data.validated_data["owner"],
                                                 add_tag=data.validated_data["add_tag"].strip())
        return Response({"updated": updated})

    @extend_schema(parameters=FILTER_PARAMS, responses={(200, "text/csv"): OpenApiTypes.STR,
                                                        202: CustomerExportOutput})
    @action(detail=False, methods=["get"])
    def export(self, request):
        """The filtered list as a CSV file (UTF-8 with BOM, opens in Excel), whole, with its length. A list
        longer than ``CUSTOMER_EXPORT_DIRECT_ROWS`` is prepared in the background instead: 202 with the
        export (``Location``: ``/api/v1/customer-exports/<id>/``; its ``download`` once ready)."""
        customers = self._filtered_list()
        if not exports.direct(customers):
            job = exports.export_request(actor=request.user, filters=self._list_filters())
            response = Response(CustomerExportOutput(job).data, status=status.HTTP_202_ACCEPTED)
            response["Location"] = reverse("api:customer_export-detail", args=[job.pk])
            return response  # its download is logged (crm.customers.exports.export_download)
        customer_data_seen(user=request.user, what=Seen.CUSTOMER_EXPORT, via=SeenVia.API,
                           detail=request.query_params.urlencode())
        body = "".join(export_customers_csv(customers)).encode("utf-8")  # whole before the first byte: never cut silently
        response = StreamingHttpResponse(iter([body]), content_type="text/csv; charset=utf-8")
        response["Content-Length"] = str(len(body))
        response["Content-Disposition"] = 'attachment; filename="customers.csv"'
        return response


class DocumentViewSet(AgencyViewSet):
    """Travel documents: only the reveal of a full number lives here (it is recorded)."""

    required_caps = {"reveal": Cap.DOCUMENTS_REVEAL}

    def agency_queryset(self):
        return TravelDocument.objects.all()

    @extend_schema(request=None, responses=RevealOutput)
    @action(detail=True, methods=["post"])
    def reveal(self, request, pk=None):
        number = services.document_reveal(actor=request.user, document=self.get_object(), via="api")
        return Response({"number": number})


# --- handover and screen pop --------------------------------------------------------------------

class HandoverView(AgencyAPIView):
    """Hand every customer of a departing colleague to others, in turn (R-CUST-5)."""

    required_caps = {"post": Cap.CUSTOMERS_MANAGE}

    @extend_schema(request=HandoverInput, responses=HandoverOutput)
    def post(self, request):
        data = HandoverInput(data=request.data)
        data.is_valid(raise_exception=True)
        handover = services.customers_handover(actor=request.user, **data.validated_data)
        return Response({"moved": handover.summary})


class ScreenPopCustomer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    latin_name = serializers.CharField()
    kind = serializers.CharField()
    owner = UserRef(allow_null=True)
    tags = serializers.ListField(child=serializers.CharField())
    url = serializers.CharField()


class ScreenPopComplaint(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField(help_text="When it was logged.")
    deadline_at = serializers.DateTimeField()
    severity = serializers.CharField()
    summary = serializers.CharField()
    url = serializers.CharField()


class ScreenPopTrip(serializers.Serializer):
    id = serializers.IntegerField()
    reference = serializers.CharField()
    title = serializers.CharField()
    destination = serializers.CharField()
    depart_on = serializers.DateField(allow_null=True)
    return_on = serializers.DateField(allow_null=True)
    status = serializers.CharField()
    url = serializers.CharField()


_TRIP_KEYS = tuple(ScreenPopTrip._declared_fields)  # once: ScreenPopTrip().fields copies every field


class ScreenPopContact(serializers.Serializer):
    at = serializers.DateTimeField()
    channel = serializers.CharField()
    summary = serializers.CharField()
    staff = serializers.CharField(allow_null=True, help_text="Full name of the colleague.")


class ScreenPopOutput(serializers.Serializer):
    number = serializers.CharField(help_text="E.164")
    customer = ScreenPopCustomer(allow_null=True)
    create_url = serializers.CharField(required=False, help_text="Only for an unknown number.")
    companies = serializers.ListField(child=serializers.CharField(), required=False)
    tier = serializers.CharField(allow_null=True, required=False, help_text="The caller's service tier.")
    recent_trips = ScreenPopTrip(many=True, required=False)
    open_complaints = ScreenPopComplaint(many=True, required=False)
    last_contacts = ScreenPopContact(many=True, required=False)


class ScreenPopView(AgencyAPIView):
    """Who is calling: the customer behind a phone number in any format (R-CUST-9).

    Kept to a handful of queries (see ``selectors.screen_pop``); the body is built by hand.
    """

    required_caps = {"get": Cap.CUSTOMERS_VIEW}

    @extend_schema(parameters=[OpenApiParameter("phone", str, required=True, description="Any format.")],
                   responses=ScreenPopOutput)
    def get(self, request):
        try:
            found = selectors.screen_pop_data(number=request.query_params.get("phone", ""))
        except ValidationError as exc:
            raise ValidationError({"phone": exc.messages}) from exc
        customer = found["customer"]
        if customer is None:
            return Response({"number": found["number"], "customer": None,
                             "create_url": "/customers/new/?" + urlencode({"phone": found["number"]})})
        customer_data_seen(user=request.user, customer_id=customer["id"], what=Seen.CARD_VIEW, via=SeenVia.API,
                           detail="screen pop")
        return Response({
            "number": found["number"],
            "customer": {"id": customer["id"], "name": customer["name"], "latin_name": customer["latin_name"],
                         "kind": customer["kind"], "tags": customer["tags"], "url": customer_path(customer["id"]),
                         "owner": customer["owner"]},
            "companies": found["companies"],
            "tier": found["tier"].name if found["tier"] else None,
            "recent_trips": [{key: t[key] for key in _TRIP_KEYS} for t in found["trips"]],
            "open_complaints": [{key: c[key] for key in ("id", "at", "deadline_at", "severity", "summary", "url")}
                                for c in found["open_complaints"]],
            "last_contacts": found["last_contacts"],
        })


class ScreenPopNoSlashView(ScreenPopView):
    """``/api/v1/screen-pop?phone=`` as telephony systems are configured, without a redirect."""

    schema = None  # documented once, under screen-pop/
