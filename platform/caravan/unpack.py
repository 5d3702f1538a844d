"""Bounds on what an upload or a feed *unpacks to*, not only on its size on the wire (issue 18).

A 1 MB .xlsx (a zip) can hold one cell that inflates to 1,000 MB; a 1 MB gzip feed can inflate to
gigabytes. Everything that decompresses user- or supplier-given bytes goes through here:

- :func:`check_zip`: an archive's central directory (declared sizes, compression ratio, member
  count) before anything reads it, and with ``read=True`` every member inflated chunk by chunk with
  a counter (bounded memory), so a member whose data disagrees with its header is refused too.
  ``zipfile`` never returns more than a member's declared size, so what passed the declared check
  is what a reader such as openpyxl can get.
- :class:`BoundedReader`: a decompressing stream (gzip) that refuses to give more than a limit, or
  more than ``ratio`` times the compressed bytes read so far.
- :func:`memory_limit`: the address space a parsing step may add to its (worker) process; past it
  allocations fail with ``MemoryError`` and the job fails with a reason instead of the host.

Limits: ``UPLOAD_MAX_UNPACKED_BYTES``, ``UPLOAD_MAX_RATIO``, ``FEED_MAX_UNPACKED_BYTES``,
``PARSE_MAX_MEMORY_MB`` (docs/configuration.md).
"""
import gzip
import resource
import zipfile
import zlib
from contextlib import contextmanager
from typing import BinaryIO

from django.conf import settings
from django.utils.translation import gettext as _

CHUNK = 1024 * 1024
MAX_MEMBERS = 10_000  # an .xlsx has a few dozen; more is a trick, not a spreadsheet
RATIO_FLOOR = 1024 * 1024  # members smaller than this may compress as well as they like
GZIP_MAGIC = b"\x1f\x8b"


class UnpackRefused(Exception):
    """The archive or stream unpacks to more than a limit allows, or is damaged. ``str()`` is a
    message for the person who sent it, naming the limit."""


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB"


def _too_big(limit: int) -> UnpackRefused:
    return UnpackRefused(_("The file unpacks to more than %(limit)s; that is more than any file we read may hold "
                           "(UPLOAD_MAX_UNPACKED_BYTES). Split it into several files.") % {"limit": _mb(limit)})


def _too_packed(name: str, ratio: int) -> UnpackRefused:
    return UnpackRefused(_("Part %(name)s of the file unpacks to more than %(ratio)s times its packed size "
                           "(UPLOAD_MAX_RATIO): that is how zip bombs are made, not spreadsheets. Refused.")
                         % {"name": name, "ratio": f"{ratio:,}"})


def check_zip(path, *, max_bytes: int | None = None, max_ratio: int | None = None, read: bool = False,
              max_members: int = MAX_MEMBERS) -> int:
    """Check the zip at ``path`` (declared sizes; with ``read``, the inflated data too) and return the
    total it unpacks to. Raises :class:`UnpackRefused`; ``zipfile.BadZipFile`` when it is no zip."""
    max_bytes = settings.UPLOAD_MAX_UNPACKED_BYTES if max_bytes is None else max_bytes
    max_ratio = settings.UPLOAD_MAX_RATIO if max_ratio is None else max_ratio
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if len(members) > max_members:
            raise UnpackRefused(_("The file holds more than %(count)s parts; no spreadsheet has that many. Refused.")
                                % {"count": f"{max_members:,}"})
        total = 0
        for info in members:
            total += info.file_size
            if total > max_bytes:
                raise _too_big(max_bytes)
            if info.file_size > RATIO_FLOOR and info.file_size > max_ratio * max(info.compress_size, 1):
                raise _too_packed(info.filename, max_ratio)
        if read:
            actual = 0
            for info in members:
                if info.is_dir():
                    continue
                size = 0
                try:
                    with archive.open(info) as stream:
                        while chunk := stream.read(CHUNK):
                            size += len(chunk)
                            actual += len(chunk)
                            if actual > max_bytes:
                                raise _too_big(max_bytes)
                            if size > RATIO_FLOOR and size > max_ratio * max(info.compress_size, 1):
                                raise _too_packed(info.filename, max_ratio)
                except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
                    # A CRC mismatch (data longer or other than its header says), an unknown method, encryption.
                    raise UnpackRefused(_("Part %(name)s of the file is damaged or encrypted (%(error)s).")
                                        % {"name": info.filename, "error": exc}) from None
            total = actual
    return total


class BoundedReader:
    """A read-only binary stream over a decompressor that refuses past ``max_bytes`` of output, or
    past ``max_ratio`` times the compressed bytes consumed from ``packed`` (counted by its tell())."""

    def __init__(self, stream: BinaryIO, packed: BinaryIO, *, max_bytes: int, max_ratio: int):
        self.stream, self.packed = stream, packed
        self.max_bytes, self.max_ratio = max_bytes, max_ratio
        self.start = packed.tell()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = CHUNK  # never "everything": that is the one read a bomb wants
        try:
            data = self.stream.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise UnpackRefused(_("The compressed data is damaged or cut off (%(error)s).") % {"error": exc}) from None
        self.count += len(data)
        if self.count > self.max_bytes:
            raise UnpackRefused(_("The message unpacks to more than %(limit)s (FEED_MAX_UNPACKED_BYTES). Refused.")
                                % {"limit": _mb(self.max_bytes)})
        packed = max(self.packed.tell() - self.start, 1)
        if self.count > RATIO_FLOOR and self.count > self.max_ratio * packed:
            raise UnpackRefused(_("The message unpacks to more than %(ratio)s times its compressed size "
                                  "(UPLOAD_MAX_RATIO): that is how decompression bombs are made. Refused.")
                                % {"ratio": f"{self.max_ratio:,}"})
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        """Rewinding (a connector that peeks first) starts the count again."""
        position = self.stream.seek(offset, whence)
        if position == 0:
            self.count = 0
        return position

    def tell(self) -> int:
        return self.stream.tell()

    def close(self) -> None:
        self.stream.close()


def open_maybe_gzip(raw: BinaryIO, *, max_bytes: int | None = None, max_ratio: int | None = None) -> BinaryIO:
    """``raw`` as it is, or decompressed and bounded when it starts with the gzip magic bytes (suppliers
    often send large files gzipped). ``raw`` must be seekable (a spooled file)."""
    position = raw.tell()
    magic = raw.read(2)
    raw.seek(position)
    if magic != GZIP_MAGIC:
        return raw
    return BoundedReader(gzip.GzipFile(fileobj=raw, mode="rb"), raw,
                         max_bytes=settings.FEED_MAX_UNPACKED_BYTES if max_bytes is None else max_bytes,
                         max_ratio=settings.UPLOAD_MAX_RATIO if max_ratio is None else max_ratio)


# --- memory -------------------------------------------------------------------------------------------

def _status(field: str) -> int:
    """A ``/proc/self/status`` size (VmSize, VmRSS, VmHWM) in bytes; 0 where there is no /proc."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def peak_rss() -> int:
    """This process's peak resident memory so far (VmHWM), in bytes."""
    return _status("VmHWM")


@contextmanager
def memory_limit(extra: int | None = None):
    """Let the block add at most ``extra`` bytes (``PARSE_MAX_MEMORY_MB``) of address space to this
    process: past that, allocations fail and Python raises ``MemoryError``, which the job turns into a
    reason its user sees. Only the soft limit is lowered, and put back afterwards; a lower limit
    already in force is kept. 0 turns it off."""
    extra = settings.PARSE_MAX_MEMORY_MB * 1024 * 1024 if extra is None else extra
    current = _status("VmSize")
    if not extra or not current:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = current + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    if soft != resource.RLIM_INFINITY:
        limit = min(limit, soft)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def memory_message() -> str:
    return _("Reading this file needed more than %(limit)s of memory (PARSE_MAX_MEMORY_MB), so it was stopped. "
             "A cell or a part of the file is far larger than a spreadsheet's; check the file or split it.") % {
        "limit": _mb(settings.PARSE_MAX_MEMORY_MB * 1024 * 1024)}
