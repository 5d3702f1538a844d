"""Encrypted storage of document scans, per agency (envelope encryption).

- Each agency has its own random Fernet **data key** (``DataKey``, a row in its schema), kept *wrapped*:
  encrypted with ``DOCUMENT_KEYS`` (``crm.customers.crypto``'s MultiFernet, the master keys from the
  environment). A copy of the database alone opens no file, nor does a copy of the files.
- A file is encrypted whole with the data key (scans are ≤ ``PORTAL_UPLOAD_MAX_BYTES``) and written through
  the default storage (django-tenants' ``TenantFileSystemStorage``) as ``documents/<uuid>.bin``, i.e.
  ``MEDIA_ROOT/<schema>/documents/<uuid>.bin``; no media URL serves it.
- ``rotate()``: the data keys re-wrapped with the newest master key (``rotate_document_keys`` calls it in
  each agency); ``rekey()``: a new data key, every file re-encrypted with it, the old key retired.
- ``sniff(data)``: what the bytes are (JPEG, PNG, HEIC/HEIF, WebP, PDF), whatever the name or declared type.
"""
import uuid

from cryptography.fernet import Fernet
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from crm.customers import crypto

from .models import DataKey, DocumentFile

# Magic numbers: (content type, offset, bytes). HEIC/HEIF are ISO-BMFF files whose "ftyp" box names a brand.
_MAGIC = (
    ("image/jpeg", 0, b"\xff\xd8\xff"),
    ("image/png", 0, b"\x89PNG\r\n\x1a\n"),
    ("application/pdf", 0, b"%PDF-"),
)
_HEIF_BRANDS = {b"heic": "image/heic", b"heix": "image/heic", b"heim": "image/heic", b"heis": "image/heic",
                b"hevc": "image/heic", b"hevx": "image/heic", b"mif1": "image/heif", b"msf1": "image/heif"}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf", "image/webp": "webp",
              "image/heic": "heic", "image/heif": "heif"}


def sniff(data: bytes) -> str | None:
    """The content type the bytes are, among the accepted ones; None for anything else."""
    for content_type, offset, magic in _MAGIC:
        if data[offset:offset + len(magic)] == magic:
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return _HEIF_BRANDS.get(data[8:12])
    return None


def _wrap(raw: bytes) -> str:
    return crypto.encrypt(raw.decode())


def _unwrap(key: DataKey) -> Fernet:
    return Fernet(crypto.decrypt(key.wrapped).encode())


def current_key() -> DataKey:
    """The agency's data key in use (the newest not retired), made on its first upload. Two first uploads at
    once may each make one: harmless, every file names the key it was encrypted with."""
    key = DataKey.objects.filter(retired_at__isnull=True).order_by("-id").first()
    return key or DataKey.objects.create(wrapped=_wrap(Fernet.generate_key()))


def write(name: str, data: bytes, key: DataKey) -> str:
    """Encrypt ``data`` with ``key`` and store it as ``documents/<name>.bin``; the stored path."""
    path = f"documents/{name}.bin"
    return default_storage.save(path, ContentFile(_unwrap(key).encrypt(data)))


def read(file: DocumentFile) -> bytes:
    with default_storage.open(file.path, "rb") as handle:
        token = handle.read()
    return _unwrap(file.key).decrypt(token)


def delete(path: str) -> None:
    default_storage.delete(path)


def forget(sender, instance: DocumentFile, **kwargs) -> None:
    """``post_delete`` of a scan (connected in the app's ``ready``): its file is deleted after the commit, in the
    schema the row was deleted in (the storage derives the folder from the active schema when it is called)."""
    from django.db import connection
    from django_tenants.utils import schema_context

    schema, path = connection.schema_name, instance.path

    def drop():
        with schema_context(schema):
            delete(path)
    transaction.on_commit(drop)


@transaction.atomic
def rotate() -> int:
    """Re-wrap this agency's data keys with the newest master key (in ``rotate_document_keys``, per agency)."""
    keys = list(DataKey.objects.select_for_update())
    for key in keys:
        key.wrapped = crypto.rotate(key.wrapped)
    DataKey.objects.bulk_update(keys, ["wrapped"])
    return len(keys)


def rekey() -> int:
    """A new data key for this agency: every file re-encrypted with it (new file first, row, then the old
    file goes), the old keys retired. Returns the number of files re-encrypted."""
    with transaction.atomic():
        DataKey.objects.select_for_update().update(retired_at=timezone.now())
        new = DataKey.objects.create(wrapped=_wrap(Fernet.generate_key()))
    done = 0
    for file in DocumentFile.objects.exclude(key=new).select_related("key"):
        data = read(file)
        old_path = file.path
        file_name = uuid.uuid4().hex
        stored = write(file_name, data, new)
        try:
            with transaction.atomic():
                DocumentFile.objects.filter(pk=file.pk).update(key=new, storage_name=file_name)
        except Exception:
            delete(stored)
            raise
        transaction.on_commit(lambda path=old_path: delete(path))
        done += 1
    return done
