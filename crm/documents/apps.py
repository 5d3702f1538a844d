from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DocumentFilesConfig(AppConfig):
    """Document scans a customer uploads in the portal (or staff upload): passport, ID, visa, photo. Stored
    encrypted at rest with the agency's own data key (``storage.py``), reviewed by staff (accept → the trip's
    visa checklist; reject → an e-mail with the reason), every view of a scan logged. Label ``document_files``:
    ``documents`` is the capability area's name and would read as the travel documents of ``crm``."""

    name = "crm.documents"
    label = "document_files"
    verbose_name = _("Document scans")

    def ready(self):
        from django.db.models.signals import post_delete

        from .models import DocumentFile
        from .storage import forget

        # A scan's row gone (erasure, a customer deleted): its encrypted file goes once that is committed.
        post_delete.connect(forget, sender=DocumentFile, dispatch_uid="document_files.forget")
