"""The agency's one shared record of every customer (R-CUST-1 … R-CUST-9). Tenant schema.

A *customer* is a person or a company. A person who travels for a company is linked to it by an
:class:`Employment` (grade, department, traveler and/or booker), so the same person is never
entered twice to be both a private customer and a corporate traveler.

Phones, e-mails and document numbers are stored normalised (E.164, lower-case, upper-case
alphanumerics) with unique constraints among live customers: a duplicate is caught by the
database even if two people type it at the same moment.
"""
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from caravan import texts
from caravan.leases import Leased


class Customer(models.Model):
    class Kind(models.TextChoices):
        PERSON = "person", _("Individual")
        COMPANY = "company", _("Corporate account")

    class Source(models.TextChoices):
        WALK_IN = "walk_in", _("Walk-in")
        WEBSITE = "website", _("Website")
        CALL_CENTER = "call_center", _("Call center")
        REFERRAL = "referral", _("Referral")
        WECHAT = "wechat", _("WeChat")
        CORPORATE = "corporate", _("Corporate contract")
        EVENT = "event", _("Event or fair")
        IMPORT = "import", _("Import")
        OTHER = "other", _("Other")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.PERSON)
    name = models.CharField(_("name"), max_length=200, help_text=_("As the customer writes it, e.g. 王芳 or ACME Ltd."))
    latin_surname = models.CharField(_("surname (as in passport)"), max_length=100, blank=True)
    latin_given = models.CharField(_("given names (as in passport)"), max_length=100, blank=True)
    gender = models.CharField(_("gender"), max_length=1, blank=True, choices=[("F", _("Female")), ("M", _("Male")), ("X", _("Other"))])
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    language = models.CharField(_("language"), max_length=10, choices=settings.LANGUAGES, default="zh-hans")
    source = models.CharField(_("source channel"), max_length=20, choices=Source.choices, default=Source.OTHER)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("account manager"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="customers",
                              db_index=False)  # the (owner, name) index serves it
    tags = ArrayField(models.CharField(max_length=40), verbose_name=_("tags"), default=list, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    # Company facts (kind = company).
    industry = models.CharField(_("industry"), max_length=100, blank=True)
    # Import bookkeeping: the row key an import matched on, so re-importing updates.
    external_ref = models.CharField(_("external reference"), max_length=100, blank=True)
    # Denormalised for fast search: names, phones, e-mails, lower-cased. Kept by services.
    search_text = models.TextField(editable=False, default="")
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_from")
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["name"]
        indexes = [
            GinIndex(name="crm_customer_search_trgm", fields=["search_text"], opclasses=["gin_trgm_ops"]),
            # One- and two-character searches (crm.customers.selectors.SEARCH_GRAMS; function in migration 0011).
            GinIndex(models.Func(models.F("search_text"), function="crm_search_grams",
                                 output_field=ArrayField(models.TextField())),
                     condition=models.Q(merged_into__isnull=True), name="crm_customer_search_grams"),
            GinIndex(name="crm_customer_tags", fields=["tags"]),
            models.Index(fields=["owner", "name"]),
            models.Index(fields=["external_ref"], name="crm_customer_external_ref"),  # equality only
        ]

    def __str__(self):
        return self.name

    @property
    def latin_name(self) -> str:
        return format_latin_name(self.latin_surname, self.latin_given)

    @property
    def is_active_record(self) -> bool:
        return self.merged_into_id is None


def format_latin_name(surname: str, given: str) -> str:
    """The passport spelling as shown: ``WANG Xiaoming``."""
    return " ".join(p for p in (surname.upper(), given.title()) if p)


class Phone(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="phones")
    number = models.CharField(_("phone"), max_length=20, help_text="E.164")
    label = models.CharField(_("label"), max_length=30, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["number"], name="crm_phone_unique")]
        indexes = [GinIndex(name="crm_phone_number_trgm", fields=["number"], opclasses=["gin_trgm_ops"])]
        ordering = ["id"]

    def __str__(self):
        return self.number


class Email(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="emails")
    address = models.EmailField(_("e-mail"))
    label = models.CharField(_("label"), max_length=30, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["address"], name="crm_email_unique")]
        ordering = ["id"]

    def __str__(self):
        return self.address


class Address(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="addresses")
    label = models.CharField(_("label"), max_length=30, blank=True)
    line = models.CharField(_("address"), max_length=300)
    city = models.CharField(_("city"), max_length=100, blank=True)
    postcode = models.CharField(_("postcode"), max_length=20, blank=True)
    country = models.CharField(_("country"), max_length=2, default="CN")

    class Meta:
        ordering = ["id"]


class FamilyDate(models.Model):
    """Dates worth a care message: a spouse's birthday, a wedding anniversary…"""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="family_dates")
    label = models.CharField(_("occasion"), max_length=60)
    date = models.DateField(_("date"))

    class Meta:
        ordering = ["date"]


class Employment(models.Model):
    """A person's place at a corporate account: traveler and/or booker, with grade and department."""

    company = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="staff_links",
                                limit_choices_to={"kind": Customer.Kind.COMPANY},
                                db_index=False)  # the unique (company, person) index serves it
    person = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="employments",
                               limit_choices_to={"kind": Customer.Kind.PERSON})
    job_grade = models.CharField(_("job grade"), max_length=20, blank=True)
    department = models.CharField(_("department"), max_length=100, blank=True)
    title = models.CharField(_("job title"), max_length=100, blank=True)
    is_traveler = models.BooleanField(_("travels"), default=True)
    is_booker = models.BooleanField(_("books for others"), default=False)
    active = models.BooleanField(_("active"), default=True)
    reports_to = models.ForeignKey(Customer, verbose_name=_("reports to"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+",
                                   limit_choices_to={"kind": Customer.Kind.PERSON},
                                   help_text=_("The traveler's manager, who approves out-of-policy bookings."))

    class Meta:
        constraints = [models.UniqueConstraint(fields=["company", "person"], name="crm_employment_unique")]


class Preferences(models.Model):
    """Structured travel preferences, queryable by later segments (R-CUST-3)."""

    class Seat(models.TextChoices):
        AISLE = "aisle", _("Aisle")
        WINDOW = "window", _("Window")

    class Cabin(models.TextChoices):
        ECONOMY = "economy", _("Economy")
        PREMIUM = "premium", _("Premium economy")
        BUSINESS = "business", _("Business")
        FIRST = "first", _("First")

    class Meal(models.TextChoices):  # IATA special meal codes
        VGML = "VGML", _("Vegetarian (vegan)")
        AVML = "AVML", _("Asian vegetarian")
        MOML = "MOML", _("Muslim")
        KSML = "KSML", _("Kosher")
        DBML = "DBML", _("Diabetic")
        GFML = "GFML", _("Gluten-free")
        CHML = "CHML", _("Child")

    class AircraftSize(models.TextChoices):
        WIDE = "wide", _("Wide-body")
        NARROW = "narrow", _("Narrow-body")

    class Sensitivity(models.TextChoices):
        LOW = "low", _("Comfort first")
        MEDIUM = "medium", _("Balanced")
        HIGH = "high", _("Price first")

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="preferences")
    airlines = ArrayField(models.CharField(max_length=2), verbose_name=_("preferred airlines (IATA)"), default=list, blank=True)
    seat = models.CharField(_("seat"), max_length=10, choices=Seat.choices, blank=True)
    meal = models.CharField(_("meal"), max_length=4, choices=Meal.choices, blank=True)
    cabin = models.CharField(_("cabin"), max_length=10, choices=Cabin.choices, blank=True)
    aircraft_size = models.CharField(_("aircraft size"), max_length=10, choices=AircraftSize.choices, blank=True)
    hotel_chains = ArrayField(models.CharField(max_length=40), verbose_name=_("hotel chains"), default=list, blank=True)
    room_type = models.CharField(_("room type"), max_length=40, blank=True)
    interests = ArrayField(models.CharField(max_length=40), verbose_name=_("interests"), default=list, blank=True)
    price_sensitivity = models.CharField(_("price sensitivity"), max_length=10, choices=Sensitivity.choices, blank=True)
    budget_per_trip = models.DecimalField(_("budget per trip"), max_digits=12, decimal_places=2, null=True, blank=True)

    INTERESTS = ("leisure", "sightseeing", "adventure", "culture", "food", "shopping", "family", "golf", "skiing", "cruise", "business")

    class Meta:
        indexes = [GinIndex(name="crm_pref_airlines", fields=["airlines"]), GinIndex(name="crm_pref_interests", fields=["interests"])]


class LoyaltyMembership(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="loyalty")
    programme = models.CharField(_("programme"), max_length=60, help_text=_("Airline IATA code or hotel chain, e.g. CA, MU, Marriott."))
    number = models.CharField(_("member number"), max_length=40)
    tier = models.CharField(_("tier"), max_length=30, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "programme"], name="crm_loyalty_unique")]


class TravelDocument(models.Model):
    """A passport, ID card or visa. The number is encrypted; only a keyed hash and a mask are clear.

    ``number_hash`` (HMAC) finds duplicates and exact matches; ``tail_hash`` finds a document by
    its last four characters; ``masked`` is what lists and cards show (``E1234****``).
    """

    class Kind(models.TextChoices):
        PASSPORT = "passport", _("Passport")
        NATIONAL_ID = "national_id", _("National ID card")
        HK_MACAU_PERMIT = "hk_macau", _("Mainland travel permit for HK/Macau")
        TAIWAN_PERMIT = "taiwan", _("Mainland travel permit for Taiwan")
        VISA = "visa", _("Visa")
        OTHER = "other", _("Other")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="documents")
    kind = models.CharField(_("document"), max_length=20, choices=Kind.choices)
    issuing_country = models.CharField(_("issuing country"), max_length=2)
    number_encrypted = models.TextField(editable=False)
    number_hash = models.CharField(max_length=64, editable=False)
    tail_hash = models.CharField(max_length=64, editable=False, db_index=True)
    masked = models.CharField(_("number"), max_length=40, editable=False)
    valid_for = models.CharField(_("visa for country"), max_length=2, blank=True)
    issued_on = models.DateField(_("issued"), null=True, blank=True)
    expires_on = models.DateField(_("expires"), null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "issuing_country", "number_hash"], name="crm_document_unique")]
        ordering = ["kind", "expires_on"]


class DocumentReveal(models.Model):
    """Every time someone saw a full document number."""

    document = models.ForeignKey(TravelDocument, on_delete=models.CASCADE, related_name="reveals")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    via = models.CharField(max_length=10)


class Contact(models.Model):
    """One contact on the customer's timeline (R-CUST-4)."""

    class Channel(models.TextChoices):
        CALL = "call", _("Call")
        EMAIL = "email", _("E-mail")
        VISIT = "visit", _("Visit")
        MESSAGE = "message", _("Message")
        COMPLAINT = "complaint", _("Complaint")
        NOTE = "note", _("Note")
        TRIP = "trip", _("Trip")
        SURVEY = "survey", _("Survey")
        PORTAL = "portal", _("Customer portal")

    class Direction(models.TextChoices):
        INBOUND = "in", _("Inbound")
        OUTBOUND = "out", _("Outbound")
        INTERNAL = "none", _("Internal")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contacts")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(_("when"), default=timezone.now)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    direction = models.CharField(_("direction"), max_length=4, choices=Direction.choices, default=Direction.OUTBOUND)
    summary = models.TextField(_("summary"))  # as typed, or as the system wrote it then (the fallback)
    # An entry the system wrote: shown from its kind and params in the reader's language (caravan.texts).
    text_kind = models.CharField(max_length=40, blank=True, default="", db_default="", editable=False)
    text_params = models.JSONField(default=dict, blank=True, editable=False,
                                   db_default=models.Value({}, output_field=models.JSONField()))
    next_step = models.CharField(_("next step"), max_length=300, blank=True)
    next_step_due = models.DateField(_("due"), null=True, blank=True)
    resolved = models.BooleanField(_("resolved"), default=False, help_text=_("For complaints."))

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["customer", "-at"])]

    @property
    def display_summary(self) -> str:
        """The summary in the active language: rendered from its kind when the system wrote it."""
        return texts.display(self.text_kind, self.text_params, self.summary)


class ChangeLog(models.Model):
    """Who changed which identity or contact field of a customer, when, from what to what (R-CUST-6)."""

    class Via(models.TextChoices):
        PAGE = "page", _("Web page")
        API = "api", _("API")
        IMPORT = "import", _("Import")
        MERGE = "merge", _("Merge")
        BULK = "bulk", _("Bulk action")
        HANDOVER = "handover", _("Handover")
        SYSTEM = "system", _("System")
        PORTAL = "portal", _("The customer, in the portal")

    # Light to write: an import adds several rows per customer. (customer, -at) serves the card.
    # Staff are deactivated, not deleted, so nothing looks entries up by actor, and the actor
    # needs no database constraint checked on every row (Django still applies SET_NULL).
    # Nor does the customer (issue 22): its constraint was checked once per row at commit, ~80,000 checks for
    # an import of 10,000 customers (~1 s of a 4 s import). Customers are merged or anonymised, never deleted
    # by the product (only with their agency's schema); a deletion through the ORM still deletes their entries
    # (CASCADE is Django's). What is lost: a customer deleted by hand while an import writes their entries
    # would leave those entries behind instead of failing (migration crm 0012).
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="changes", db_index=False,
                                 db_constraint=False)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+",
                              db_index=False, db_constraint=False)
    via = models.CharField(max_length=10, choices=Via.choices)
    field = models.CharField(max_length=60)
    old = models.TextField(blank=True)
    new = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["customer", "-at"])]


class Handover(models.Model):
    """A departing colleague's customers handed to others in one step (R-CUST-5)."""

    from_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    summary = models.JSONField(default=dict, help_text="{recipient user id: number of customers}")


class ImportJob(Leased):
    """An import; while running, leased by its worker (caravan.leases): ``processed_rows`` and the
    counters are its checkpoint, committed with each batch, and a resumed run starts after them."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("Uploaded")
        CHECKED = "checked", _("Checked")
        RUNNING = "running", _("Importing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    file = models.FileField(upload_to="imports/")
    original_name = models.CharField(max_length=200)
    mapping = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UPLOADED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, help_text="[{row, field, message}] (first 1,000)")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]


class CustomerExport(Leased):
    """A customer list export too large to stream (R-CUST-8): made in the background into a private file
    (``EXPORT_ROOT/customers/<schema>/``, never under MEDIA), downloaded by the person who asked while
    it is kept. Leased (caravan.leases): the CSV's checkpoint is the last customer written and the
    file's length then, so a resumed run continues the file without a row lost or written twice."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Being prepared")
        DONE = "done", _("Ready")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "Excel"

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    format = models.CharField(max_length=4, choices=Format.choices, default=Format.CSV)
    filters = models.JSONField(default=dict, blank=True, help_text="The list's filters, as crm.customers.selectors.customer_list takes them.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    total_rows = models.PositiveIntegerField(default=0)
    done_rows = models.PositiveIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True, editable=False)
    size = models.BigIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    downloads = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    @property
    def downloadable(self) -> bool:
        return self.status == self.Status.DONE and bool(self.file_name) and (
            self.expires_at is None or self.expires_at > timezone.now())
