"""Destination knowledge base API (R-CUST-10) under /api/v1/destinations/: the agency's articles (search,
read, write, delete), their visa notes, attachments and history, the import, and the operators' shared
base (read, copy into the agency). Thin: ``crm.destinations.services`` and ``selectors`` do the work."""
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.roles import Cap
from caravan.api.views import AgencyAPIView, AgencyViewSet
from caravan.api.writes import ServiceCreateMixin, ServiceUpdateMixin
from crm.customers.api import UserRef
from crm.trips.models import ChecklistItem

from . import imports, selectors, services
from .imports import MAX_BYTES
from .models import Article, ArticleChange, ArticleImport, Attachment, VisaNote

SECTION_FIELDS = services.TEXT_FIELDS[2:]


# --- output ----------------------------------------------------------------------------------------

class ClimateMonth(serializers.Serializer):
    high = serializers.IntegerField(allow_null=True, required=False, min_value=-90, max_value=60)
    low = serializers.IntegerField(allow_null=True, required=False, min_value=-90, max_value=60)
    rain_mm = serializers.IntegerField(allow_null=True, required=False, min_value=0, max_value=5000)
    note = serializers.CharField(allow_blank=True, required=False, max_length=services.NOTE_MAX)


class VisaNoteOutput(serializers.ModelSerializer):
    checked_by = UserRef(allow_null=True)
    is_stale = serializers.BooleanField(read_only=True)

    class Meta:
        model = VisaNote
        fields = ["nationality", "requirement", "stay_days", "documents", "text_en", "text_zh", "checked_on",
                  "checked_by", "is_stale", "updated_at"]


class SharedVisaNoteOutput(serializers.ModelSerializer):
    is_stale = serializers.BooleanField(read_only=True)

    class Meta:
        model = VisaNote
        fields = ["nationality", "requirement", "stay_days", "documents", "text_en", "text_zh", "checked_on",
                  "is_stale"]


class AttachmentOutput(serializers.ModelSerializer):
    class Meta:
        model = Attachment
        fields = ["id", "title", "content_type", "size", "uploaded_at"]


class _ArticleFields(serializers.ModelSerializer):
    climate = ClimateMonth(many=True)
    is_stale = serializers.SerializerMethodField(help_text="A visa note was never checked, or not for 180 days.")

    class Meta:
        model = Article
        fields = ["id", "kind", "country", "region", "city", "iata_codes", "title_en", "title_zh", *SECTION_FIELDS,
                  "climate", "tags", "is_stale", "created_at", "updated_at"]

    def get_is_stale(self, article) -> bool:
        return article.is_stale


class ArticleOutput(_ArticleFields):
    visa_notes = VisaNoteOutput(many=True)
    attachments = AttachmentOutput(many=True)
    created_by = UserRef(allow_null=True)
    updated_by = UserRef(allow_null=True)

    class Meta(_ArticleFields.Meta):
        fields = _ArticleFields.Meta.fields + ["visa_notes", "attachments", "copied_from", "copied_at",
                                               "created_by", "updated_by"]


class SharedArticleOutput(_ArticleFields):
    visa_notes = serializers.SerializerMethodField()
    copy_id = serializers.SerializerMethodField(help_text="This agency's copy of the article, if it has one.")

    class Meta(_ArticleFields.Meta):
        fields = _ArticleFields.Meta.fields + ["visa_notes", "copy_id"]

    @extend_schema_field(SharedVisaNoteOutput(many=True))
    def get_visa_notes(self, article):
        notes = getattr(article, "shared_visa_notes", None)
        if notes is None:
            notes = list(article.visa_notes.all())
        return SharedVisaNoteOutput(notes, many=True).data

    def get_copy_id(self, article) -> int | None:
        return self.context.get("copies", {}).get(article.pk)


class ArticleChangeOutput(serializers.ModelSerializer):
    actor = UserRef(allow_null=True)

    class Meta:
        model = ArticleChange
        fields = ["at", "kind", "fields", "params", "actor"]


# --- input -----------------------------------------------------------------------------------------

class ArticleInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Article.Kind.choices, default=Article.Kind.CITY)
    country = serializers.CharField(max_length=2, help_text="ISO 3166 alpha-2, e.g. JP.")
    region = serializers.CharField(max_length=100, allow_blank=True, required=False, default="")
    city = serializers.CharField(max_length=100, allow_blank=True, required=False, default="",
                                 help_text="English name, e.g. Tokyo.")
    iata_codes = serializers.ListField(child=serializers.CharField(max_length=3), required=False, default=list,
                                       max_length=20)
    title_en = serializers.CharField(max_length=services.TITLE_MAX, allow_blank=True, required=False, default="")
    title_zh = serializers.CharField(max_length=services.TITLE_MAX, allow_blank=True, required=False, default="")
    climate = ClimateMonth(many=True, required=False, help_text="Twelve months, January first, or none.")
    tags = serializers.ListField(child=serializers.CharField(max_length=services.TAG_MAX), required=False,
                                 default=list, max_length=services.TAGS_MAX)

    def get_fields(self):
        fields = super().get_fields()
        for name in SECTION_FIELDS:
            fields[name] = serializers.CharField(max_length=services.SECTION_MAX, allow_blank=True, required=False,
                                                 default="", trim_whitespace=False)
        return fields


class VisaNoteInput(serializers.Serializer):
    nationality = serializers.CharField(max_length=2, help_text="ISO 3166 alpha-2, e.g. CN.")
    requirement = serializers.ChoiceField(choices=VisaNote.Requirement.choices)
    stay_days = serializers.IntegerField(allow_null=True, required=False, min_value=1, max_value=3650)
    documents = serializers.ListField(child=serializers.ChoiceField(choices=ChecklistItem.Document.choices),
                                      required=False, max_length=20)
    text_en = serializers.CharField(max_length=services.SECTION_MAX, allow_blank=True, required=False)
    text_zh = serializers.CharField(max_length=services.SECTION_MAX, allow_blank=True, required=False)
    checked = serializers.BooleanField(required=False, default=False,
                                       help_text="I have just checked this: sets checked_on to today and checked_by to me.")


class AttachmentInput(serializers.Serializer):
    file = serializers.FileField(help_text="A photo (JPEG, PNG, GIF, WebP) or PDF, up to 10 MB.")
    title = serializers.CharField(max_length=services.TITLE_MAX, allow_blank=True, required=False, default="")


class ImportInput(serializers.Serializer):
    file = serializers.FileField(help_text=f"Markdown (.md), a .zip of Markdown files, .csv or .xlsx, up to "
                                           f"{MAX_BYTES // (1024 * 1024)} MB; see docs/destinations.md.")


class ImportErrorOutput(serializers.Serializer):
    where = serializers.CharField(help_text="The file or row.")
    field = serializers.CharField()
    message = serializers.CharField()


class ImportReportOutput(serializers.Serializer):
    saved = serializers.BooleanField(help_text="False: nothing was saved; see errors.")
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    articles = serializers.ListField(child=serializers.IntegerField())
    errors = ImportErrorOutput(many=True)


class ArticleImportOutput(serializers.ModelSerializer):
    report = serializers.SerializerMethodField(help_text="The import's report once finished; null before.")

    class Meta:
        model = ArticleImport
        fields = ["id", "status", "original_name", "created_at", "started_at", "finished_at", "report"]

    @extend_schema_field(ImportReportOutput(allow_null=True))
    def get_report(self, job):
        return ImportReportOutput(job.report).data if job.finished and job.report else None


def _data(validated: dict) -> dict:
    data = dict(validated)
    if "climate" in data:
        data["climate"] = [dict(month) for month in data["climate"]]
    return data


# --- the agency's articles -------------------------------------------------------------------------

class ArticleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceCreateMixin, ServiceUpdateMixin,
                     AgencyViewSet):
    """The agency's destination articles. ``search`` takes Chinese, pinyin (full or initials) and English."""

    serializer_class = ArticleOutput
    input_serializer = ArticleInput
    lookup_value_regex = "[0-9]+"
    required_caps = {"list": Cap.KNOWLEDGE_VIEW, "retrieve": Cap.KNOWLEDGE_VIEW, "changes": Cap.KNOWLEDGE_VIEW,
                     "stale": Cap.KNOWLEDGE_VIEW,
                     "create": Cap.KNOWLEDGE_EDIT, "partial_update": Cap.KNOWLEDGE_EDIT, "destroy": Cap.KNOWLEDGE_EDIT,
                     "visa_notes": Cap.KNOWLEDGE_EDIT, "visa_note_delete": Cap.KNOWLEDGE_EDIT,
                     "attachments": Cap.KNOWLEDGE_EDIT,
                     "update_from_shared": Cap.KNOWLEDGE_EDIT, "import_file": Cap.KNOWLEDGE_EDIT}

    def agency_queryset(self):
        return Article.objects.select_related("created_by", "updated_by").prefetch_related(
            "visa_notes__checked_by", "attachments").order_by("country", "region", "city", "id")

    def search_queryset(self, queryset, term):
        return selectors.matching(queryset, term)

    def create_service(self, data):
        return services.article_save(actor=self.request.user, article=None, data=_data(data))

    def update_service(self, article, data):
        return services.article_save(actor=self.request.user, article=article, data=_data(data))

    def answer(self, instance, code=status.HTTP_200_OK):
        return Response(ArticleOutput(self.agency_queryset().get(pk=instance.pk)).data, status=code)

    def destroy(self, request, pk=None):
        services.article_delete(actor=request.user, article=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=ArticleChangeOutput(many=True))
    @action(detail=True, methods=["get"], paginated=True)
    def changes(self, request, pk=None):
        """Who wrote and updated what, newest first."""
        page = self.paginate_queryset(selectors.changes(self.get_object()))
        return self.get_paginated_response(ArticleChangeOutput(page, many=True).data)

    @extend_schema(responses=ArticleOutput(many=True))
    @action(detail=False, methods=["get"])
    def stale(self, request):
        """Articles with a visa note never checked or not checked for 180 days."""
        articles = selectors.stale_articles().select_related("created_by", "updated_by")[:200]
        return Response(ArticleOutput(articles, many=True).data)

    @extend_schema(request=VisaNoteInput, responses={200: VisaNoteOutput})
    @action(detail=True, methods=["post"], url_path="visa-notes")
    def visa_notes(self, request, pk=None):
        """Create or change the article's visa note for a nationality."""
        article = self.get_object()
        data = VisaNoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        nationality = values.pop("nationality")
        note = services.visa_note_save(actor=request.user, article=article, nationality=nationality, data=values)
        return Response(VisaNoteOutput(note).data)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"visa-notes/(?P<nationality>[A-Za-z]{2})")
    def visa_note_delete(self, request, pk=None, nationality=None):
        note = get_object_or_404(VisaNote, article=self.get_object(), nationality=nationality.upper())
        services.visa_note_delete(actor=request.user, note=note)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request={"multipart/form-data": AttachmentInput}, responses={201: AttachmentOutput})
    @action(detail=True, methods=["post"])
    def attachments(self, request, pk=None):
        """Attach a photo or PDF (stored in this agency's own folder)."""
        article = self.get_object()
        data = AttachmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        attachment = services.attachment_add(actor=request.user, article=article, upload=data.validated_data["file"],
                                             title=data.validated_data["title"])
        return Response(AttachmentOutput(attachment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ArticleOutput})
    @action(detail=True, methods=["post"], url_path="update-from-shared")
    def update_from_shared(self, request, pk=None):
        """Overwrite this copy with the shared article's current text and visa notes."""
        article = services.article_update_from_shared(actor=request.user, article=self.get_object())
        return self.answer(article)

    @extend_schema(request={"multipart/form-data": ImportInput}, responses={202: ArticleImportOutput})
    @action(detail=False, methods=["post"], url_path="import")
    def import_file(self, request):
        """Queue an import of articles from Markdown or a spreadsheet: 202 with the import and a ``Location``
        to poll (``GET /api/v1/destinations/imports/{id}/``). A worker reads the file; the import's
        ``report`` is all or nothing: ``saved`` false and ``errors`` (by file or row, and field) when
        anything is wrong."""
        data = ImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.import_articles(actor=request.user, upload=data.validated_data["file"])
        return Response(ArticleImportOutput(job).data, status=status.HTTP_202_ACCEPTED,
                        headers={"Location": reverse("api:destination_import-detail", args=[job.pk])})


class ArticleImportViewSet(mixins.RetrieveModelMixin, AgencyViewSet):
    """An import of articles (queued by ``POST …/articles/import/``): its status (queued, running, done,
    failed) and, once finished, its report."""

    serializer_class = ArticleImportOutput
    lookup_value_regex = "[0-9]+"
    required_caps = {"retrieve": Cap.KNOWLEDGE_EDIT}

    def agency_queryset(self):
        return ArticleImport.objects.all()

    def retrieve(self, request, pk=None):
        return Response(ArticleImportOutput(imports.current(self.get_object())).data)


class AttachmentViewSet(AgencyViewSet):
    """An article's attachment: its file, or deleting it (adding one: ``POST …/articles/{id}/attachments/``)."""

    serializer_class = AttachmentOutput
    lookup_value_regex = "[0-9]+"
    required_caps = {"file": Cap.KNOWLEDGE_VIEW, "destroy": Cap.KNOWLEDGE_EDIT}

    def agency_queryset(self):
        return Attachment.objects.select_related("article")

    def destroy(self, request, pk=None):
        services.attachment_remove(actor=request.user, attachment=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def file(self, request, pk=None):
        """The attachment's file (a photo shown inline, a PDF downloaded)."""
        attachment = self.get_object()
        try:
            handle = attachment.file.open("rb")
        except OSError:
            raise Http404 from None
        return FileResponse(handle, content_type=attachment.content_type, as_attachment=not attachment.is_image,
                            filename=f"{attachment.title or 'attachment'}{services.ATTACHMENT_TYPES[attachment.content_type]}")


# --- the operators' shared base --------------------------------------------------------------------

class SharedListView(AgencyAPIView):
    """The operators' shared base, which every agency reads and may copy into its own: at most 200, one
    array (not pages); ``q`` searches as ``search`` does the agency's articles."""

    required_caps = {"get": Cap.KNOWLEDGE_VIEW}

    @extend_schema(parameters=[OpenApiParameter("q", str, required=False,
                                                description="Chinese, pinyin (full or initials) or English.")],
                   responses=SharedArticleOutput(many=True))
    def get(self, request):
        articles = selectors.shared_articles(request.query_params.get("q", ""))
        return Response(SharedArticleOutput(articles, many=True, context={"copies": selectors.copies_of_shared()}).data)


class SharedDetailView(AgencyAPIView):
    required_caps = {"get": Cap.KNOWLEDGE_VIEW}

    @extend_schema(responses=SharedArticleOutput)
    def get(self, request, pk: int):
        article = selectors.shared_article(pk)
        if article is None:
            raise Http404
        return Response(SharedArticleOutput(article, context={"copies": selectors.copies_of_shared()}).data)


class SharedCopyView(AgencyAPIView):
    required_caps = {"post": Cap.KNOWLEDGE_EDIT}

    @extend_schema(request=None, responses={201: ArticleOutput, 409: OpenApiResponse(description="Already copied.")})
    def post(self, request, pk: int):
        """Copy the shared article, with its visa notes and attachments, into this agency (once)."""
        if selectors.shared_article(pk) is None:
            raise Http404
        article = services.article_copy_shared(actor=request.user, shared_id=pk)
        return Response(ArticleOutput(Article.objects.get(pk=article.pk)).data, status=status.HTTP_201_CREATED)
