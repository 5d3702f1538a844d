"""Customer import from the spreadsheets agencies really have (R-CUST-8).

Plain functions, no web: read a .csv or .xlsx, guess which column is which, check every row
without writing anything, then import in batches.

Speed matters (a 100,000-row file in well under a minute), so rows are not fed one by one to
``crm.customers.services.customer_create``. Instead each batch is normalised in Python with the same
helpers the services use (``crm.customers.normalize``), matched against existing customers with a few
bulk queries, and written with PostgreSQL ``COPY`` (changed customers: one ``UPDATE``) inside one transaction:
a batch is applied fully or not at all. The change log rows and the search text come from the
same functions the services use (``crm.customers.snapshot``), fed plain values, with ``via=import``.

Re-importing a file updates rather than duplicates: a row matches an existing customer by its
external reference, else by a phone, else by an e-mail. Blank cells never erase what is on file;
new phones, e-mails and addresses are added; tags are merged.
"""
import csv
import fcntl
import gc
import io
import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
import json
import os
import secrets
import zipfile
from pathlib import Path
from types import SimpleNamespace

import psycopg
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import services as billing_services
from caravan import leases, texts, unpack
from caravan.tenancy import require_agency
from caravan.texts import Text

from .models import Address, ChangeLog, Customer, Email, Employment, ImportJob, Phone
from .normalize import email_normal, passport_latin, phone_e164
from .snapshot import address_text, changes, customer_search_text, snapshot

BATCH_SIZE = 5000  # rows per transaction
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
EXTENSIONS = (".csv", ".xlsx")
MAX_ERRORS = 1000  # kept on the job and shown in reports; the count is always complete
CHECK_TIME_LIMIT = 15 * 60  # seconds a worker may spend reading or checking one file
KEEP_FILES = timedelta(days=7)  # uploaded spreadsheets are deleted this long after the import
FORGET_BATCH = 1000  # import jobs whose files are deleted per statement

# Target fields a column can be mapped to, in the order the mapping page lists them.
FIELDS = {
    "name": gettext_lazy("Name"),
    "latin_surname": gettext_lazy("Surname (as in passport)"),
    "latin_given": gettext_lazy("Given names (as in passport)"),
    "gender": gettext_lazy("Gender"),
    "birthday": gettext_lazy("Birthday"),
    "phone": gettext_lazy("Phone"),
    "email": gettext_lazy("E-mail"),
    "address": gettext_lazy("Address"),
    "city": gettext_lazy("City"),
    "source": gettext_lazy("Source channel"),
    "tags": gettext_lazy("Tags"),
    "notes": gettext_lazy("Notes"),
    "company": gettext_lazy("Company (corporate account)"),
    "department": gettext_lazy("Department"),
    "job_grade": gettext_lazy("Job grade"),
    "title": gettext_lazy("Job title"),
    "is_booker": gettext_lazy("Books for others"),
    "external_ref": gettext_lazy("External reference"),
}
MULTI = {"phone", "email", "tags", "notes"}  # fields several columns may feed
MAX_LENGTH = {"name": 200, "latin_surname": 100, "latin_given": 100, "address": 300, "city": 100, "company": 200,
              "department": 100, "job_grade": 20, "title": 100, "external_ref": 100, "tag": 40}

# Header names as agencies write them, normalised by _header_key (lower case, no spaces or punctuation).
SYNONYMS = {
    "name": "姓名 名字 名称 客户姓名 客户名称 客户名 中文名 中文姓名 联系人 联系人姓名 旅客姓名 name fullname customername customer "
            "contactname travellername travelername",
    "latin_surname": "姓拼音 拼音姓 英文姓 护照姓 姓氏拼音 英文姓氏 surname lastname familyname latinsurname passportsurname",
    "latin_given": "名拼音 拼音名 英文名 护照名 名字拼音 givenname givennames firstname latingiven passportgivenname",
    "gender": "性别 gender sex",
    "birthday": "生日 出生日期 出生年月日 出生年月 birthday birthdate dateofbirth dob born",
    "phone": "手机 手机号 手机号码 电话 电话号码 联系电话 联系方式 移动电话 座机 办公电话 家庭电话 phone phones mobile "
             "mobilephone tel telephone cell cellphone phonenumber",
    "email": "邮箱 电子邮箱 电子邮件 邮件 邮箱地址 email emails mail emailaddress",
    "address": "地址 联系地址 住址 家庭地址 通讯地址 详细地址 address street addressline",
    "city": "城市 所在城市 所在地 city town",
    "source": "来源 客户来源 渠道 来源渠道 source sourcechannel channel",
    "tags": "标签 客户标签 tags tag labels",
    "notes": "备注 说明 备注信息 notes note remarks remark comment comments memo",
    "company": "公司 公司名称 单位 工作单位 所属公司 企业 企业名称 company companyname employer organisation organization",
    "department": "部门 所属部门 department dept",
    "job_grade": "职级 级别 差旅级别 差标级别 grade jobgrade level",
    "title": "职位 职务 头衔 岗位 title jobtitle position",
    "is_booker": "订票人 是否订票人 预订人 是否预订人 booker isbooker booksforothers",
    "external_ref": "编号 客户编号 客户id 会员编号 外部编号 原系统编号 externalref externalid externalreference reference "
                    "ref customerno customernumber customerid",
    # Recognised and deliberately left out: travel documents are added one by one, encrypted, on the
    # card; the export's own bookkeeping columns are not customer data to import.
    "": "护照号 护照号码 证件号 证件号码 身份证 身份证号 身份证号码 证件类型 passport passportno passportnumber idnumber "
        "idcard id 序号 no kind 类型 created 创建时间 accountmanageremail 客户经理账号",
}
# When no name matches exactly: a distinctive word inside the header (checked in this order).
CONTAINS = [("手机", "phone"), ("电话", "phone"), ("phone", "phone"), ("mobile", "phone"), ("邮箱", "email"),
            ("邮件", "email"), ("email", "email"), ("生日", "birthday"), ("出生", "birthday"), ("birth", "birthday"),
            ("性别", "gender"), ("部门", "department"), ("职级", "job_grade"), ("职位", "title"), ("职务", "title"),
            ("公司", "company"), ("company", "company"), ("地址", "address"), ("address", "address"),
            ("城市", "city"), ("备注", "notes"), ("标签", "tags"), ("来源", "source"), ("姓名", "name")]

GENDERS = {"男": "M", "男性": "M", "先生": "M", "m": "M", "male": "M", "man": "M", "mr": "M",
           "女": "F", "女性": "F", "女士": "F", "小姐": "F", "f": "F", "female": "F", "woman": "F", "ms": "F",
           "mrs": "F", "miss": "F", "其他": "X", "其它": "X", "x": "X", "other": "X"}
BOOLEANS = {"是": True, "y": True, "yes": True, "true": True, "1": True, "✓": True, "√": True, "t": True,
            "否": False, "n": False, "no": False, "false": False, "0": False, "f": False, "×": False}
SOURCE_WORDS = {"微信": "wechat", "网站": "website", "官网": "website", "网络": "website", "转介绍": "referral",
                "介绍": "referral", "推荐": "referral", "老客户推荐": "referral", "电话": "call_center",
                "呼叫中心": "call_center", "到店": "walk_in", "门店": "walk_in", "展会": "event", "活动": "event",
                "企业客户": "corporate", "公司协议": "corporate", "导入": "import", "其他": "other", "其它": "other"}
MONTHS = {name: number for number, names in enumerate(
    ["jan january", "feb february", "mar march", "apr april", "may", "jun june", "jul july", "aug august",
     "sep sept september", "oct october", "nov november", "dec december"], start=1) for name in names.split()}

_HEADER_JUNK = re.compile(r"[\s_\-.:：()（）\[\]【】*#/\\·'\"’]+")
_SPLIT_MULTI = re.compile(r"\s*[,，;；、|/]\s*")
_MULTI_MARK = re.compile(r"[,，;；、|/]")  # a cell without one is a single value: nothing to split
_YMD = re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DMY_NUMERIC = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})")
_DAY_MONTH = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?[\s\-]+([a-z]+)\.?,?[\s\-]+(\d{4})")
_MONTH_DAY = re.compile(r"([a-z]+)\.?[\s\-]+(\d{1,2})(?:st|nd|rd|th)?,?[\s\-]+(\d{4})")
_SERIAL = re.compile(r"\d{5}(?:\.0+)?")
_EXCEL_EPOCH = date(1899, 12, 30)


# --- reading files ------------------------------------------------------------------------------

class Row(dict):
    """One data row, {header: value}, remembering its row number in the spreadsheet (header = 1)."""

    __slots__ = ("number",)


def read_rows(path, original_name: str) -> tuple[list[str], Iterator[Row]]:
    """Headers and an iterator of non-blank rows of a .csv (UTF-8 with or without BOM, else
    GB18030) or .xlsx (first sheet). Values are stripped strings, or dates for Excel date cells.
    Raises ValidationError({"file": …}) when the file cannot be read."""
    suffix = Path(original_name).suffix.lower()
    if suffix == ".csv":
        header, records = _csv_records(path)
    elif suffix == ".xlsx":
        _check_xlsx(path, read=True)
        header, records = _xlsx_records(path)
    else:
        raise ValidationError({"file": [_("Upload a .csv or .xlsx file.")]})
    headers = _unique_headers(header)
    if not any(header):
        raise ValidationError({"file": [_("The first row of the file must name the columns.")]})
    return headers, _rows(headers, records, text=suffix == ".csv")


def count_rows(path, original_name: str) -> int:
    """About how many data rows the file has, cheaply, for a progress bar: lines of a CSV, the
    recorded size of an Excel sheet. Blank rows and line breaks inside cells count too."""
    if Path(original_name).suffix.lower() == ".xlsx":
        from openpyxl import load_workbook

        _check_xlsx(path)
        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            return max((workbook.worksheets[0].max_row or 1) - 1, 0)
        finally:
            workbook.close()
    with open(path, "rb") as file:
        return max(sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b"")) - 1, 0)


def _csv_records(path):
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError:
            raise ValidationError({"file": [_("This file is neither UTF-8 nor GB18030 text. Save it as CSV "
                                              "(UTF-8) or as an Excel .xlsx workbook.")]})
    first_line = text[:text.find("\n")] if "\n" in text else text
    delimiter = max(",;\t", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = _readable(reader)
    return next(rows, []), rows


def _readable(reader):
    """The CSV's rows; a row the csv module cannot read (a cell past its size limit, a stray NUL) is
    a file error naming the row, not a server error."""
    try:
        yield from reader
    except csv.Error as exc:
        if "field limit" in str(exc):
            message = _("A cell on line %(line)s is longer than %(limit)s characters; no customer field holds "
                        "that much. Check the file.") % {"line": reader.line_num, "limit": f"{csv.field_size_limit():,}"}
        else:
            message = _("Line %(line)s of the file cannot be read as CSV (%(error)s).") % {
                "line": reader.line_num, "error": exc}
        raise ValidationError({"file": [message]}) from None


def _check_xlsx(path, *, read: bool = False) -> None:
    """Before openpyxl opens it: what the workbook (a zip) unpacks to, declared and, with ``read``,
    actually inflated (caravan.unpack). A file error naming the limit, never a worker out of memory.

    openpyxl then parses the XML with the standard library's expat (2.4 and later refuse entity
    amplification such as billion laughs; ElementTree never fetches external entities). defusedxml,
    which openpyxl would use when installed, parses in pure Python, 1.5–2× slower, for no more safety."""
    try:
        unpack.check_zip(path, read=read)
    except zipfile.BadZipFile:
        raise ValidationError({"file": [_("This is not an Excel .xlsx workbook we can read.")]}) from None
    except unpack.UnpackRefused as exc:
        raise ValidationError({"file": [str(exc)]}) from None


def _xlsx_records(path):
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except MemoryError:
        raise
    except Exception:  # openpyxl raises many kinds of errors for a broken or foreign file
        raise ValidationError({"file": [_("This is not an Excel .xlsx workbook we can read.")]})
    sheet = workbook.worksheets[0]
    sheet.reset_dimensions()  # some programs record a wrong sheet size; read every row there is

    def bounded(rows, first: int):
        """The sheet's rows; one openpyxl cannot read on is a file error naming the row, not a server
        error. (openpyxl cuts a cell to Excel's 32,767 characters; what it inflated to get there is
        bounded by caravan.unpack and the worker's memory limit.)"""
        number = first - 1
        try:
            for number, values in enumerate(rows, start=first):
                yield values
        except MemoryError:
            raise
        except Exception:  # noqa: BLE001 — XML errors, bad numbers, entity amplification refused by expat …
            raise ValidationError({"file": [_("Row %(row)s of the workbook cannot be read. Save the file again "
                                              "from Excel, or as CSV (UTF-8).") % {"row": number + 1}]}) from None

    def records():
        try:
            yield from bounded(sheet.iter_rows(min_row=2, values_only=True), 2)
        finally:
            workbook.close()

    header = next(bounded(sheet.iter_rows(max_row=1, values_only=True), 1), ())
    return [_cell_text(v) for v in header], records()


def _cell_text(value):
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _unique_headers(header) -> list[str]:
    headers, seen = [], set()
    for index, value in enumerate(header, start=1):
        name = str(value).strip() or _("Column %(number)s") % {"number": index}
        base, copy = name, 2
        while name in seen:
            name, copy = f"{base} ({copy})", copy + 1
        seen.add(name)
        headers.append(name)
    while headers and not str(header[len(headers) - 1]).strip():  # trailing unnamed, empty columns
        headers.pop()
    return headers


def _rows(headers: list[str], records, *, text: bool = False) -> Iterator[Row]:
    """The non-blank rows as Rows. ``text``: every value is a string (a CSV), so each row is built in one step."""
    width = len(headers)
    if text:
        for number, values in enumerate(records, start=2):
            cells = list(map(str.strip, values[:width]))
            if any(cells):
                row = Row(zip(headers, cells))
                row.number = number
                yield row
        return
    for number, values in enumerate(records, start=2):
        row = Row()
        row.number = number
        blank = True
        for header, value in zip(headers, values[:width]):
            value = _cell_text(value) if not isinstance(value, str) else value.strip()
            if value != "":
                blank = False
            row[header] = value
        if not blank:
            yield row


# --- which column is which ------------------------------------------------------------------------

def _header_key(text: str) -> str:
    return _HEADER_JUNK.sub("", str(text)).lower()


def _synonyms() -> dict[str, str]:
    """{normalised header: field}, including the field labels in every language we speak."""
    table = {}
    for target, words in SYNONYMS.items():
        for word in words.split():
            table[_header_key(word)] = target
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            for target, label in FIELDS.items():
                table.setdefault(_header_key(str(label)), target)
    return table


def suggest_mapping(headers: list[str]) -> dict[str, str]:
    """{header: field} for every header ('' = leave the column out). A single-valued field is
    suggested for its first matching column only; phones, e-mails, tags and notes may take several."""
    table, taken, mapping = _synonyms(), set(), {}
    for header in headers:
        key = _header_key(header)
        target = table.get(key)
        if target is None:
            target = next((t for word, t in CONTAINS if word in key), "")
        if target and target not in MULTI and target in taken:
            target = ""
        taken.add(target)
        mapping[header] = target
    return mapping


def clean_mapping(headers: list[str], mapping: dict) -> dict[str, str]:
    """The mapping for these headers, checked: known fields, the name mapped, single fields once."""
    mapping = {h: (mapping or {}).get(h) or "" for h in headers}
    unknown = sorted({v for v in mapping.values() if v and v not in FIELDS})
    errors = []
    if unknown:
        errors.append(_("Unknown target fields: %(fields)s.") % {"fields": ", ".join(unknown)})
    if "name" not in mapping.values():
        errors.append(_("Choose the column that holds the customer's name."))
    counts = defaultdict(int)
    for target in mapping.values():
        counts[target] += 1
    twice = [str(FIELDS[t]) for t, n in counts.items() if t in FIELDS and t not in MULTI and n > 1]
    if twice:
        errors.append(_("Only one column can be used for: %(fields)s.") % {"fields": ", ".join(twice)})
    if errors:
        raise ValidationError({"mapping": errors})
    return mapping


def preview(job: ImportJob) -> tuple[list[str] | None, list[list]]:
    """The headers and first rows the worker read from the file (None: not read yet). Never reads the file."""
    known = state(job)
    return known.get("headers"), known.get("preview") or []


# --- reading and checking in the worker ------------------------------------------------------------------
#
# A web process never parses an uploaded file (issue 18: a 1 MB .xlsx unpacking to 1,000 MB took a web
# worker to 2.27 GB). The upload is stored, its zip directory checked (cheap: declared sizes only), and
# ``crm.check_import`` reads it in a worker under caravan.unpack's bounds and memory limit: first the
# headers and a preview, then, when asked, the dry run. Where that stands, the headers, the preview and
# the last report live beside the upload in the agency's media folder (``<file>.json``), so they go
# when the file goes; the page polls it and the API shows it (``progress``).

PREVIEW_ROWS = 5


class NotReadYet(Exception):
    """The worker has not read the file's headers yet."""


def _state_path(job: ImportJob) -> Path:
    return Path(job.file.path + ".json")


def state(job: ImportJob) -> dict:
    """{"headers", "preview", "task": {kind, state, token, at, message, language}, "mapping", "report"}.

    The worker saves the suggested mapping on the job before it writes the headers here, so a caller
    whose ``job`` was loaded before that and who now sees headers gets the row again: a page never
    shows the columns with every select on "leave out"."""
    try:
        known = json.loads(_state_path(job).read_text())
    except (OSError, ValueError):  # nothing read yet, or no file (ValueError from an empty FileField)
        return {}
    if known.get("headers") is not None and not job.mapping and job.pk:
        job.refresh_from_db(fields=["mapping"])
    return known


def _update_state(job: ImportJob, change: Callable[[dict], bool | None]) -> dict:
    """Apply ``change`` to the job's state under a file lock; ``change`` returns False to keep it as it was."""
    path = _state_path(job)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = state(job)
        if change(current) is False:
            return current
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(current, ensure_ascii=False, default=str))
        os.replace(temporary, path)
        return current


def _queue(job: ImportJob, kind: str, **extra) -> str:
    """Record that the worker has ``kind`` ("read" or "check") to do, and queue it once committed."""
    from .tasks import check_import

    token = secrets.token_hex(8)

    def change(current):
        current["task"] = {"kind": kind, "state": "queued", "token": token, "at": timezone.now().isoformat(),
                           "message": "", "language": translation.get_language() or settings.LANGUAGE_CODE}
        current.update(extra)
    _update_state(job, change)
    check_import.delay(job.pk, token)
    return token


def progress(job: ImportJob) -> dict:
    """Where reading and checking the file stand, for the page and the API:
    ``state`` is reading (headers not known yet), ready (no check asked), queued, checking, checked
    (``report`` is the dry run of ``job.mapping``), stopped (the worker went away; ask again) or
    failed (``message`` says why; a refused file fails the job itself)."""
    known = state(job)
    task = known.get("task") or {}
    report = known.get("report") if known.get("mapping") == job.mapping else None
    out = {"state": "ready", "message": task.get("message", ""), "report": report, "headers": known.get("headers")}
    if job.status == ImportJob.Status.FAILED and task.get("state") == "failed":
        out["state"] = "failed"
    elif task.get("state") in ("queued", "working"):
        since = datetime.fromisoformat(task["at"])
        if task["state"] == "working" and timezone.now() - since > timedelta(seconds=CHECK_TIME_LIMIT + 60):
            out.update(state="stopped", message=_("The check stopped before it finished (its worker went away). "
                                                  "Check again."))
        elif known.get("headers") is None:
            out["state"] = "reading"
        else:
            out["state"] = "queued" if task["state"] == "queued" else "checking"
    elif known.get("headers") is None:
        out["state"] = "reading" if job.status in (ImportJob.Status.UPLOADED, ImportJob.Status.CHECKED) else "failed"
    elif task.get("state") == "failed":
        out["state"] = "failed"
    elif report is not None:
        out["state"] = "checked"
    return out


def job_read(job: ImportJob) -> list[str]:
    """In the worker: read the file's headers and first rows and suggest a mapping. Raises
    ValidationError({"file": …}) for a file we cannot or will not read."""
    headers, rows = read_rows(job.file.path, job.original_name)
    first = [[_preview_text(row.get(h, "")) for h in headers] for row in itertools.islice(rows, PREVIEW_ROWS)]
    job.mapping = suggest_mapping(headers)
    ImportJob.objects.filter(pk=job.pk).update(mapping=job.mapping)
    _update_state(job, lambda current: current.update(headers=headers, preview=first))
    return headers


def _preview_text(value) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)[:200]


def check_request(job: ImportJob, *, mapping: dict) -> dict:
    """From a page or the API: save the mapping (checked against the headers the worker read) and queue
    the dry run. Returns ``progress``. Raises NotReadYet, ImportAlreadyStarted or ValidationError."""
    if job.status not in (ImportJob.Status.UPLOADED, ImportJob.Status.CHECKED):
        if job.status == ImportJob.Status.RUNNING:
            leases.revive(IMPORT, job.pk)  # a run whose worker died goes on (or fails with a reason), never stuck
        raise ImportAlreadyStarted
    headers = state(job).get("headers")
    if headers is None:
        raise NotReadYet
    job.mapping = clean_mapping(headers, mapping)
    ImportJob.objects.filter(pk=job.pk).update(mapping=job.mapping)
    _queue(job, "check", mapping=job.mapping)
    return progress(job)


def read_request(job: ImportJob) -> None:
    """Queue reading the file again when nothing is queued for it (a state lost, an old upload)."""
    task = state(job).get("task") or {}
    if task.get("state") not in ("queued", "working"):
        _queue(job, "read")


def work(job: ImportJob, token: str) -> str:
    """The worker's side of ``crm.check_import``: read the headers if not yet known, then the dry run if
    one was asked, within caravan.unpack's memory limit. A file refused (too big unpacked, unreadable,
    needing more memory than allowed) fails the job with the reason, shown on its page and in the API,
    and is deleted at once. Returns the outcome."""
    known = state(job)
    task = known.get("task") or {}
    if task.get("token") != token or task.get("state") != "queued":
        return "stale"  # a newer request replaced this one, or it was redelivered after it ran
    if job.status not in (ImportJob.Status.UPLOADED, ImportJob.Status.CHECKED):
        return "started"

    def mark(**fields):
        def change(current):
            if (current.get("task") or {}).get("token") != token:
                return False
            current["task"].update(at=timezone.now().isoformat(), **fields)
        return _update_state(job, change)

    mark(state="working")
    try:
        with unpack.memory_limit():
            if known.get("headers") is None:
                job_read(job)
            if task["kind"] == "check":
                report = job_check(job, mapping=known["mapping"])
                _update_state(job, lambda current: current.update(report=report, mapping=job.mapping))
    except ValidationError as exc:
        if "mapping" in getattr(exc, "error_dict", {}):  # the headers changed under it: ask again
            mark(state="failed", message=" ".join(exc.messages))
            return "mapping"
        _refuse(job, " ".join(exc.messages))
        mark(state="failed", message=" ".join(exc.messages))
        return "refused"
    except MemoryError:
        message = unpack.memory_message()
        _refuse(job, message)
        mark(state="failed", message=message)
        return "memory"
    except SoftTimeLimitExceeded:
        mark(state="failed", message=_("The check took longer than %(minutes)s minutes and was stopped. Split the "
                                       "file into smaller ones.") % {"minutes": CHECK_TIME_LIMIT // 60})
        return "timeout"
    except BaseException:
        mark(state="failed", message=_("The check stopped on an internal error; it was logged. Check again."))
        raise
    mark(state="done", message="")
    return "done"


def _refuse(job: ImportJob, reason: str) -> None:
    """The file will not be read: the job fails with the reason and the file (personal data, and
    perhaps a bomb) goes now."""
    ImportJob.objects.filter(pk=job.pk, status__in=[ImportJob.Status.UPLOADED, ImportJob.Status.CHECKED]).update(
        status=ImportJob.Status.FAILED, finished_at=timezone.now(), failure=reason[:2000])
    default_storage.delete(job.file.name)


# --- jobs ---------------------------------------------------------------------------------------------

def job_create(*, actor, upload) -> tuple[ImportJob, list[str] | None]:
    """Store an uploaded file as a new job and queue reading it (``crm.check_import``); returns the job
    and its headers (None until the worker has read them). Only the zip directory of an .xlsx is
    looked at here (declared sizes, caravan.unpack): a web process parses no upload."""
    name = Path(upload.name or "").name
    if Path(name).suffix.lower() not in EXTENSIONS:
        raise ValidationError({"file": [_("Upload a .csv or .xlsx file.")]})
    if upload.size > MAX_UPLOAD_BYTES:
        raise ValidationError({"file": [_("The file is larger than 20 MB. Split it into several files.")]})
    job = ImportJob(created_by=actor, original_name=name[:200])
    job.file.save(name, upload, save=False)
    try:
        if Path(name).suffix.lower() == ".xlsx":
            _check_xlsx(job.file.path)
    except ValidationError:
        default_storage.delete(job.file.name)
        raise
    job.save()
    _queue(job, "read")
    return job, None


class ImportAlreadyStarted(Exception):
    """The job is running or finished: its mapping can no longer change, nor can it start again."""


def job_check(job: ImportJob, *, mapping: dict) -> dict:
    """Save the mapping and dry-run the file: the report of what an import would do."""
    if job.status not in (ImportJob.Status.UPLOADED, ImportJob.Status.CHECKED):
        if job.status == ImportJob.Status.RUNNING:
            leases.revive(IMPORT, job.pk)  # a run whose worker died goes on (or fails with a reason), never stuck
        raise ImportAlreadyStarted
    headers = state(job).get("headers")
    if headers is None:
        headers, _rows_iter = read_rows(job.file.path, job.original_name)
    job.mapping = clean_mapping(headers, mapping)
    report = check(job)
    # Only while not started meanwhile: a run asked for during the check keeps its status.
    if ImportJob.objects.filter(pk=job.pk, status__in=[ImportJob.Status.UPLOADED, ImportJob.Status.CHECKED]).update(
            mapping=job.mapping, status=ImportJob.Status.CHECKED, total_rows=report["total_rows"]):
        job.status, job.total_rows = ImportJob.Status.CHECKED, report["total_rows"]
    return report


def job_start(job: ImportJob, *, mapping: dict) -> ImportJob:
    """Save the mapping and mark the job running (offered to a worker, caravan.leases); the caller then
    queues ``crm.customers.tasks.import_customers``. Raises ImportAlreadyStarted if it is running or done, so a
    double click queues one import only; but a run whose worker died (its lease ran out) is taken
    over here: offered again and returned, to resume from its checkpoint, or failed with a reason
    once it has used its attempts."""
    if job.status == ImportJob.Status.RUNNING:
        return _take_over(job)
    headers = state(job).get("headers")  # as the worker read them: no parsing here
    if headers is None:
        raise NotReadYet
    mapping = clean_mapping(headers, mapping)
    started = ImportJob.objects.filter(
        pk=job.pk, status__in=[ImportJob.Status.UPLOADED, ImportJob.Status.CHECKED],
    ).update(mapping=mapping, status=ImportJob.Status.RUNNING, processed_rows=0, **leases.offered())
    job.refresh_from_db()
    if not started:
        raise ImportAlreadyStarted
    leases.watch(IMPORT)
    return job


def _take_over(job: ImportJob) -> ImportJob:
    now = timezone.now()
    offered = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING, lease_until__lt=now,
                                       attempts__lt=settings.JOB_MAX_ATTEMPTS).update(
        lease_owner="", lease_until=now + leases.lease_length())
    if not offered:
        leases.revive(IMPORT, job.pk, now=now)  # out of attempts: failed, with the reason on its page
        job.refresh_from_db()
        raise ImportAlreadyStarted
    leases.watch(IMPORT)
    job.refresh_from_db()
    return job


def _resume(pk: int) -> None:
    from .tasks import import_customers

    import_customers.delay(pk)


def _failed(reason: str) -> dict:
    return {"status": ImportJob.Status.FAILED, "finished_at": timezone.now()}


# The import's lease: the watchdog queues a run whose worker died again (caravan.leases).
IMPORT = leases.register(leases.Kind(name="crm.import", model="crm.ImportJob", active={"status": "running"},
                                     resume=_resume, failed=_failed))


def forget_old_files(*, now=None) -> int:
    """Delete uploaded spreadsheets once they are no longer needed: they are full of personal data.

    A finished (or failed) import keeps its counts and error report but loses its file after
    ``KEEP_FILES``; an upload never imported is dropped altogether after the same time. Returns
    how many files were deleted."""
    cutoff = (now or timezone.now()) - KEEP_FILES
    deleted = 0
    finished = ImportJob.objects.filter(status__in=[ImportJob.Status.DONE, ImportJob.Status.FAILED],
                                        finished_at__lt=cutoff).exclude(file="")
    abandoned = ImportJob.objects.filter(status__in=[ImportJob.Status.UPLOADED, ImportJob.Status.CHECKED],
                                         created_at__lt=cutoff)
    # A batch at a time (bounded memory): the files, then one UPDATE / DELETE for the batch's rows.
    for jobs, forget in ((finished, lambda rows: rows.update(file="")),
                         (abandoned, lambda rows: rows.delete())):
        while batch := list(jobs.order_by("pk").values_list("pk", "file")[:FORGET_BATCH]):
            for _pk, name in batch:
                if name:
                    for path in (name, f"{name}.json", f"{name}.json.lock"):  # the file, what was read of it
                        default_storage.delete(path)
                    deleted += 1
            forget(ImportJob.objects.filter(pk__in=[pk for pk, _name in batch]))
    return deleted


# --- reading one row ----------------------------------------------------------------------------------

def parse_date(value) -> date:
    """1985-03-02, 1985/3/2, 1985年3月2日, 19850302, 2 March 1985, March 2, 1985, 2/3/1985 when
    unambiguous, and Excel date cells or serial numbers. Raises ValueError."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip().lower()
    if match := _YMD.fullmatch(text) or _COMPACT.fullmatch(text):
        return date(int(match[1]), int(match[2]), int(match[3]))
    if match := _DMY_NUMERIC.fullmatch(text):
        first, second, year = int(match[1]), int(match[2]), int(match[3])
        if first > 12 or first == second:
            return date(year, second, first)
        if second > 12:
            return date(year, first, second)
        raise ValueError("ambiguous")
    if match := _DAY_MONTH.fullmatch(text):
        return date(int(match[3]), MONTHS[match[2]], int(match[1]))
    if match := _MONTH_DAY.fullmatch(text):
        return date(int(match[3]), MONTHS[match[1]], int(match[2]))
    if _SERIAL.fullmatch(text):
        return _EXCEL_EPOCH + timedelta(days=int(float(text)))
    raise ValueError("not a date")


@dataclass
class Parsed:
    number: int
    values: dict = field(default_factory=dict)  # field → clean value (non-blank cells only)
    phones: list = field(default_factory=list)
    emails: list = field(default_factory=list)
    errors: list = field(default_factory=list)  # [(field, message)]
    customer_id: int | None = None  # the existing customer this row updates


class _Context:
    """What stays the same for every row of one check or run: the columns, the region, and what
    earlier rows of the file already claimed (to report in-file duplicates)."""

    def __init__(self, job: ImportJob):
        self.job = job
        self.columns: dict[str, list[str]] = defaultdict(list)
        for header, target in job.mapping.items():
            if target in FIELDS:
                self.columns[target].append(header)
        agency = require_agency()
        self.region = agency.default_region
        self.today = timezone.localdate()
        self.sources = self._source_words()
        # Cell text → clean value of the fields whose cells repeat (gender, source, company…): each read once.
        self.clean: dict[str, dict[str, object]] = {target: {} for target in _REPEATING}
        self.tag_cells: dict[str, tuple] = {}  # a tags cell → its tags, sorted (a file repeats a few combinations)
        # What _parse does per mapped field: (field, its one column or None, its columns, how to read the cells,
        # the field's cache of clean values, the length of a plain text field).
        self.readers = [(target, headers[0] if len(headers) == 1 else None, headers, _READERS.get(target),
                         self.clean.get(target), MAX_LENGTH[target] if target in _PLAIN else None)
                        for target, headers in self.columns.items()]
        self.seen: dict[tuple, int] = {}  # ("phone", "+86…") → first row number
        self.companies: dict[str, int | None] = {}  # name → id (None: to be created)
        # New customers the plan still allows (None: no limit); rows past it are reported, not written.
        self.room = billing_services.customer_room(agency)

    @staticmethod
    def _source_words() -> dict[str, str]:
        words = {value: value for value in Customer.Source.values}
        for code, _name in settings.LANGUAGES:
            with translation.override(code):
                words.update({str(label).lower(): value for value, label in Customer.Source.choices})
        words.update(SOURCE_WORDS)
        return words


def _parse(row: Row, ctx: _Context) -> Parsed:
    parsed = Parsed(row.number)
    values, errors = parsed.values, parsed.errors
    for target, header, headers, read, known, limit in ctx.readers:
        if header is not None:  # one column (most fields): no list of cells to build
            cell = row.get(header, "")
            if cell == "":
                continue
            if read is None:  # what _parse_single does, without a call for the usual cells
                if type(cell) is not str:
                    cell = str(cell)
                if known is not None:
                    if (value := known.get(cell, _UNSEEN)) is not _UNSEEN:
                        values[target] = value
                    else:
                        _parse_single(target, cell, values, errors, ctx)
                elif limit is not None and len(cell) <= limit:
                    values[target] = cell
                else:
                    _read_single(target, cell, values, errors, ctx)
                continue
            cells = [cell]
        else:
            cells = [row[h] for h in headers if row.get(h, "") != ""]
            if not cells:
                continue
            if read is None:
                _parse_single(target, str(cells[0]), values, errors, ctx)
                continue
        read(target, cells, parsed, ctx)
    if not values.get("name"):
        errors.append(("name", Text("import_no_name")))
    if "company" not in values:
        for key in ("department", "job_grade", "title", "is_booker"):
            if key in values:
                errors.append((key, Text("import_no_company")))
                break
    return parsed


def _read_birthday(target: str, cells: list, parsed: Parsed, ctx: _Context) -> None:
    try:
        day = parse_date(cells[0])
    except (ValueError, KeyError, OverflowError):
        parsed.errors.append(("birthday", Text("import_bad_date", value=cells[0])))
        return
    if day > ctx.today:
        parsed.errors.append(("birthday", Text("import_future_birthday")))
    elif day.year < 1900:
        parsed.errors.append(("birthday", Text("import_old_birthday", value=cells[0])))
    else:
        parsed.values["birthday"] = day


def _read_tags(target: str, cells: list, parsed: Parsed, ctx: _Context) -> None:
    key = cells[0] if len(cells) == 1 and type(cells[0]) is str else None
    if key is not None and (known := ctx.tag_cells.get(key)) is not None:
        parsed.values["tags"] = list(known)
        return
    tags = {t for cell in cells for t in _SPLIT_MULTI.split(str(cell)) if t}
    if any(len(t) > MAX_LENGTH["tag"] for t in tags):
        parsed.errors.append(("tags", Text("import_long_tag")))
    else:
        parsed.values["tags"] = sorted(tags)
        if key is not None and len(ctx.tag_cells) < _CLEAN_LIMIT:
            ctx.tag_cells[key] = tuple(parsed.values["tags"])


def _read_notes(target: str, cells: list, parsed: Parsed, ctx: _Context) -> None:
    parsed.values["notes"] = str(cells[0]) if len(cells) == 1 else "\n".join(str(c) for c in cells)


def _parse_contacts(target: str, cells: list, parsed: Parsed, ctx: _Context) -> None:
    """Phones or e-mails, several per cell allowed: normalised, each once, bad ones reported."""
    phone = target == "phone"
    found = parsed.phones if phone else parsed.emails
    for cell in cells:
        cell = str(cell)
        for raw in _SPLIT_MULTI.split(cell) if _MULTI_MARK.search(cell) else (cell,):
            if not raw:
                continue
            try:
                value = phone_e164(raw, ctx.region) if phone else email_normal(raw)
            except ValidationError as exc:
                parsed.errors.append((target, _contact_error(exc)))
                continue
            if value not in found:
                found.append(value)


# normalize.py's refusals, by message: saved as kinds, read in the reader's language
_CONTACT_KINDS = {"“%(raw)s” is not a phone number.": "import_not_phone",
                  "“%(raw)s” is not a valid phone number.": "import_invalid_phone",
                  "“%(raw)s” is not an e-mail address.": "import_not_email"}


def _contact_error(exc: ValidationError):
    error = exc.error_list[0]
    for msgid, kind in _CONTACT_KINDS.items():
        if str(error.message) == _(msgid) and "raw" in (error.params or {}):
            return Text(kind, raw=error.params["raw"])
    return exc.messages[0]


_READERS = {"phone": _parse_contacts, "email": _parse_contacts, "birthday": _read_birthday, "tags": _read_tags,
            "notes": _read_notes}  # the other fields: _parse_single
# Fields whose cells repeat across rows: a cell text read cleanly once is not read again (_Context.clean).
_REPEATING = ("latin_surname", "gender", "source", "is_booker", "city", "company", "department", "job_grade", "title")
# Fields whose cell is taken as it is when not too long (_read_single's last branch): _parse does that itself.
_PLAIN = ("name", "address", "city", "company", "department", "job_grade", "title", "external_ref")
_UNSEEN = object()


def _parse_single(target: str, text: str, values: dict, errors: list, ctx: _Context) -> None:
    known = ctx.clean.get(target)
    if known is not None:
        if text in known:
            values[target] = known[text]
            return
        _read_single(target, text, values, errors, ctx)
        if target in values and len(known) < _CLEAN_LIMIT:
            known[text] = values[target]
        return
    _read_single(target, text, values, errors, ctx)


_CLEAN_LIMIT = 10000  # cell texts remembered per field


def _read_single(target: str, text: str, values: dict, errors: list, ctx: _Context) -> None:
    if target in MAX_LENGTH and len(text) > MAX_LENGTH[target]:
        errors.append((target, Text("import_too_long", count=MAX_LENGTH[target])))
    elif target == "gender":
        gender = GENDERS.get(text.lower().rstrip("."))
        if gender is None:
            errors.append(("gender", Text("import_gender", value=text)))
        else:
            values["gender"] = gender
    elif target == "source":
        source = ctx.sources.get(text.lower())
        if source is None:
            errors.append(("source", Text("import_source", value=text)))
        else:
            values["source"] = source
    elif target == "is_booker":
        flag = BOOLEANS.get(text.lower())
        if flag is None:
            errors.append(("is_booker", Text("import_yes_no")))
        else:
            values["is_booker"] = flag
    elif target in ("latin_surname", "latin_given"):
        if not passport_latin(text):
            errors.append((target, Text("import_latin")))
        else:
            values[target] = text
    else:
        values[target] = text


# --- matching a batch against the file so far and the database ------------------------------------

def _claim(parsed: Parsed, ctx: _Context) -> None:
    """Report a phone, e-mail or reference that an earlier row of the file already has."""
    number, seen, errors = parsed.number, ctx.seen, parsed.errors
    if (ref := parsed.values.get("external_ref")) and (first := seen.setdefault(("external_ref", ref), number)) != number:
        errors.append(("external_ref", Text("import_duplicate_row", row=first)))
    for kind, found in (("phone", parsed.phones), ("email", parsed.emails)):
        for value in found:
            if (first := seen.setdefault((kind, value), number)) != number:
                errors.append((kind, Text("import_duplicate_row", row=first)))


def _match(batch: list[Parsed], ctx: _Context) -> None:
    """Find the customer each valid row updates, or report a conflict with other customers."""
    valid = [p for p in batch if not p.errors]
    with transaction.atomic(), connection.cursor() as cursor:
        # crm_phone.number also has a trigram GIN index, which answers "=" too. While a big import
        # grows the tables faster than statistics follow, the planner picks it, and each looked-up
        # number then walks GIN's whole pending list: seconds per batch instead of milliseconds.
        # Without bitmap scans these lookups use the unique b-tree indexes.
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        _match_valid(valid, ctx)


def _match_valid(valid: list[Parsed], ctx: _Context) -> None:
    refs = list({p.values["external_ref"] for p in valid if p.values.get("external_ref")})
    by_ref = {ref: pk for pk, ref in _select(  # the oldest customer with that reference wins
        f"SELECT id, external_ref FROM {_table(Customer)} WHERE external_ref = ANY(%s) AND merged_into_id IS NULL "
        "ORDER BY id DESC", refs)}
    by_phone = dict(_select(f"SELECT number, customer_id FROM {_table(Phone)} WHERE number = ANY(%s)",
                            list({n for p in valid for n in p.phones})))
    by_email = dict(_select(f"SELECT address, customer_id FROM {_table(Email)} WHERE address = ANY(%s)",
                            list({a for p in valid for a in p.emails})))
    owners = set(by_ref.values()) | set(by_phone.values()) | set(by_email.values())
    names, companies = {}, set()
    for pk, name, kind in _select(f"SELECT id, name, kind FROM {_table(Customer)} WHERE id = ANY(%s)", list(owners)):
        names[pk] = name
        if kind == Customer.Kind.COMPANY:
            companies.add(pk)
    for parsed in valid:
        ref = parsed.values.get("external_ref")
        candidates = ([by_ref[ref]] if ref in by_ref else []) + [by_phone[n] for n in parsed.phones if n in by_phone] \
            + [by_email[a] for a in parsed.emails if a in by_email]
        if not candidates:
            continue
        target = candidates[0]
        for number in parsed.phones:
            if by_phone.get(number, target) != target:
                parsed.errors.append(("phone", Text("import_taken", value=number, name=names[by_phone[number]])))
        for address in parsed.emails:
            if by_email.get(address, target) != target:
                parsed.errors.append(("email", Text("import_taken", value=address, name=names[by_email[address]])))
        if target in companies:
            parsed.errors.append(("name", Text("import_corporate", name=names[target])))
        first = ctx.seen.setdefault(("customer", target), parsed.number)
        if first != parsed.number:
            parsed.errors.append(("name", Text("import_same_customer", row=first)))
        parsed.customer_id = target


def _plans(rows: Iterator[Row], ctx: _Context) -> Iterator[list[Parsed]]:
    """Batches of rows, parsed, checked for in-file duplicates and matched against the database.

    Reading the file and parsing (mostly phone numbers) are pure Python and run in a helper thread one batch
    ahead, so they overlap the time the caller waits for the database writing the previous batch (read in the
    caller, the rows cost ~4 % of an import's wall time with the database idle). Only that thread touches
    ``rows``, one batch at a time.

    Runs inside ``_no_collections``, so nothing may keep a batch only through a reference cycle:
    phonenumbers keeps the exception it handles in a local (``sys.exc_info()``), a cycle through its frame
    that holds the frames that called it (a refused number, some foreign ones). The parsed rows go back
    through ``box``, not as the future's result, and the rows are cleared once parsed, so those frames hold
    one row each, not the batch (test: ten batches, at most two alive)."""
    language = translation.get_language()
    rows = iter(rows)

    def read_and_parse(box: list) -> None:
        with translation.override(language):  # the caller's, for the rows' errors and a file error met reading
            chunk = list(itertools.islice(rows, BATCH_SIZE))
            box.append(list(map(_parse, chunk, itertools.repeat(ctx))))
        chunk.clear()

    def ahead(pool: ThreadPoolExecutor) -> tuple:
        box = []
        return pool.submit(read_and_parse, box), box

    def parsed(next_batch: tuple) -> list[Parsed]:
        future, box = next_batch
        future.result()  # raises what reading or parsing raised
        return box.pop()

    with ThreadPoolExecutor(max_workers=1) as pool:
        next_batch = ahead(pool)
        while batch := parsed(next_batch):
            next_batch = ahead(pool)
            yield _plan(batch, ctx)


def _plan(batch: list[Parsed], ctx: _Context) -> list[Parsed]:
    for parsed in batch:
        _claim(parsed, ctx)
    _match(batch, ctx)
    if ctx.room is not None:
        for parsed in batch:
            if parsed.errors or parsed.customer_id is not None:
                continue
            if ctx.room > 0:
                ctx.room -= 1
            else:
                parsed.errors.append(("name", Text("import_plan_limit")))
    missing = list({p.values["company"] for p in batch if not p.errors and p.values.get("company")}
                   - ctx.companies.keys())
    if missing:
        found = {name: pk for pk, name in _select(  # the oldest company of that name wins
            f"SELECT id, name FROM {_table(Customer)} WHERE kind = %s AND merged_into_id IS NULL AND name = ANY(%s) "
            "ORDER BY id DESC", Customer.Kind.COMPANY.value, missing)}
        for name in missing:
            ctx.companies[name] = found.get(name)
    return batch


@contextmanager
def _no_collections() -> Iterator[None]:
    """No automatic garbage collection while a file is checked or imported, and what the process held before
    kept out of the one collection at the end (``gc.freeze``); back as it was after.

    Each row leaves several tracked objects (its Row, Parsed, lists); every few thousand of them the
    collector ran, and its full passes walked the whole process (Django, the app, the batch): a third
    of a dry run's CPU (~14 µs a row of ~42). What the rows leave in reference cycles is small (``_plans``).
    Only in workers and tests: a web process, whose loaded modules ``caravan.wsgi`` froze, never reads a file."""
    enabled = gc.isenabled()
    ours = not gc.get_freeze_count()  # a process that froze its own objects keeps them frozen: thaw only ours
    gc.disable()
    if ours:
        gc.freeze()
    try:
        yield
    finally:
        gc.collect()  # what the import left in cycles, walking only what it made
        if ours:
            gc.unfreeze()
        if enabled:
            gc.enable()


def errors_shown(errors: list[dict]) -> list[dict]:
    """Saved row errors (``ImportJob.errors``, a report's ``errors``) with each message in the active
    language (``caravan.texts``: saved with its kind and params; older entries as they were written)."""
    return [{**error, "message": texts.entry_text(error)} for error in errors or []]


def _errors_of(parsed: Parsed) -> list[dict]:
    return [{"row": parsed.number, "field": f, **texts.entry(m)} for f, m in parsed.errors]


# --- dry run --------------------------------------------------------------------------------------

def check(job: ImportJob) -> dict:
    """Validate every row against the file and the database; write nothing.

    {"total_rows", "create", "update", "skip", "new_companies", "error_count", "errors": [{row, field, message}]}
    ``skip`` counts rows with any error (they would not be imported); ``error_count`` counts all
    errors, of which ``errors`` holds the first 1,000."""
    ctx = _Context(job)
    _headers, rows = read_rows(job.file.path, job.original_name)
    report = {"total_rows": 0, "create": 0, "update": 0, "skip": 0, "new_companies": 0, "error_count": 0, "errors": []}
    new_companies = set()
    with _no_collections():
        for plan in _plans(rows, ctx):
            for parsed in plan:
                report["total_rows"] += 1
                if parsed.errors:
                    report["skip"] += 1
                    report["error_count"] += len(parsed.errors)
                    report["errors"].extend(_errors_of(parsed)[:MAX_ERRORS - len(report["errors"])])
                    continue
                report["update" if parsed.customer_id else "create"] += 1
                company = parsed.values.get("company")
                if company and ctx.companies.get(company) is None:
                    new_companies.add(company)
    report["new_companies"] = len(new_companies)
    return report


# --- the import ---------------------------------------------------------------------------------------

def run(job: ImportJob, progress: Callable[[ImportJob], None] | None = None) -> ImportJob:
    """Import the file with ``job.mapping``, one transaction per batch. Counters, errors (first
    1,000; ``error_count`` counts all) and ``processed_rows`` are updated on ``job`` for every
    batch and ``progress(job)`` is called **inside the batch's transaction** (the task records its
    checkpoint there, so the rows and the count of rows done commit together). Rows skipped =
    processed - created - updated. Does not touch ``job.status``.

    A job with ``processed_rows`` already set is a resumed run (its worker died, caravan.leases):
    those rows were committed with their checkpoint, so they are read again only to know what the
    file already claimed (in-file duplicates, companies), and the import goes on after them."""
    ctx = _Context(job)
    if not job.total_rows:
        job.total_rows = count_rows(job.file.path, job.original_name)
    done = job.processed_rows
    if not done:
        job.created_count = job.updated_count = job.error_count = 0
        job.errors = []
    writer = _Writer(ctx, actor=job.created_by)
    _headers, rows = read_rows(job.file.path, job.original_name)
    with _no_collections():
        if done:
            _replay(itertools.islice(rows, done), ctx)
        _import_plans(job, _plans(rows, ctx), ctx, writer, progress)
    job.total_rows = job.processed_rows
    return job


def _import_plans(job: ImportJob, plans: Iterator[list[Parsed]], ctx: _Context, writer: "_Writer",
                  progress: Callable[[ImportJob], None] | None) -> None:
    """``run``'s batches: each written in its own transaction, or reported as a clash if it fails."""
    for plan in plans:
        good = [p for p in plan if not p.errors]
        fresh = sum(1 for p in good if p.customer_id is None)
        before = (job.created_count, job.updated_count, job.error_count, list(job.errors), job.processed_rows,
                  job.total_rows)
        try:
            with transaction.atomic():
                created, updated = writer.write(good)
                _tally(job, plan, created, updated)
                if progress is not None:
                    progress(job)
        except DatabaseError:
            # Someone saved one of these phones or e-mails meanwhile (or similar): the batch was rolled
            # back as a whole; report its rows and go on with the next batch.
            (job.created_count, job.updated_count, job.error_count, job.errors, job.processed_rows,
             job.total_rows) = before
            writer.forget_new_companies()
            if ctx.room is not None:  # the batch's new rows were not written: their room is free again
                ctx.room += fresh
            for parsed in good:
                parsed.errors.append(("", Text("import_batch_clash")))
            _tally(job, plan, 0, 0)
            if progress is not None:
                with transaction.atomic():
                    progress(job)


def _tally(job: ImportJob, plan: list[Parsed], created: int, updated: int) -> None:
    job.created_count += created
    job.updated_count += updated
    for parsed in plan:
        if parsed.errors:
            job.error_count += len(parsed.errors)
            job.errors.extend(_errors_of(parsed)[:MAX_ERRORS - len(job.errors)])
    job.processed_rows += len(plan)
    job.total_rows = max(job.total_rows, job.processed_rows)


def _replay(rows: Iterator[Row], ctx: _Context) -> None:
    """Read the rows an earlier attempt imported, writing nothing: their phones, e-mails and references
    claim their place in the file again, and their customers and companies (now in the database) are
    matched, so the rows after them are judged as in one uninterrupted run. The plan's room was
    counted fresh from the database (those rows' customers already use theirs)."""
    room, ctx.room = ctx.room, None
    for _plan_done in _plans(rows, ctx):
        pass
    ctx.room = room


class _Writer:
    """Writes one planned batch: new companies, new and changed people, contacts, employments, audit."""

    def __init__(self, ctx: _Context, actor):
        self.ctx = ctx
        self.actor_id = actor.pk if actor else None
        self.actor_text = _copy_value(self.actor_id)
        self.new_company_names: list[str] = []

    def forget_new_companies(self) -> None:
        for name in self.new_company_names:
            self.ctx.companies[name] = None
        self.new_company_names = []

    def write(self, batch: list[Parsed]) -> tuple[int, int]:
        """Two passes over the batch, each overlapping its Python with the server's work on the other core:
        the first prepares the customers and streams the new ones to COPY (PostgreSQL updates their GIN
        indexes meanwhile), the second builds the audit snapshots and streams the change log to its own COPY.
        One connection runs one COPY at a time, hence two passes rather than one."""
        self.now = timezone.now()
        self.now_text = _copy_value(self.now)
        self.logs: list[str] = []  # the new companies' change-log rows as COPY text lines (_log)
        self.new_company_names = []
        self._create_companies(batch)
        new = [p for p in batch if p.customer_id is None]
        old = [p for p in batch if p.customer_id is not None]
        ids = _next_ids(Customer, len(new))
        for parsed, pk in zip(new, ids):
            parsed.customer_id = pk
        existing = self._load(old)
        phones, emails, addresses = [], [], []
        changed, audited = [], []
        log = self._log_texts(audited)
        with _copy_stream(Customer, _CREATED) as new_customer:  # the server indexes them while the loop goes on
            for parsed in batch:
                self._prepare(parsed, existing.get(parsed.customer_id), phones, emails, addresses, new_customer,
                              changed, audited)
            # The server is still indexing the last customers sent: build the first change-log lines meanwhile.
            head = list(itertools.islice(log, len(audited) // _LOG_HEAD))
        with _copy_stream(ChangeLog, _LOGGED) as add_log:
            for text in itertools.chain(head, log):
                add_log(text)
        _update_customers(changed, self.now)
        esc = _COPY_ESCAPES
        for model, column, pairs in ((Phone, "number", phones), (Email, "address", emails)):
            text = "".join([f"{c}\t{v}\t\n" for c, v in pairs])
            if not _plain_copy_text(text, 2 * len(pairs), len(pairs)):
                text = "".join([f"{c}\t{v.translate(esc)}\t\n" for c, v in pairs])
            _copy(model, ["customer", column, "label"], lines=text)
        tail = f"\t\t{self.ctx.region.translate(esc)}\n"
        _copy(Address, ["customer", "label", "line", "city", "postcode", "country"],
              lines="".join(f"{c}\t\t{line.translate(esc)}\t{city.translate(esc)}{tail}"
                            for c, line, city in addresses))
        self._employments(batch)
        return len(new), len(old)

    def _prepare(self, parsed: Parsed, have: dict | None, phones: list, emails: list, addresses: list,
                 new_customer: Callable[[str], None], changed: list, audited: list) -> None:
        """One row's customer (sent to COPY when new, else added to ``changed`` if it changed) and contacts;
        what its change log needs is added to ``audited`` (``_log_texts``)."""
        values = parsed.values
        record = have["customer"] if have else _new_person(parsed.customer_id)
        dirty = self._apply(record, values)
        new_phones = [n for n in parsed.phones if not have or n not in have["phones"]]
        new_emails = [a for a in parsed.emails if not have or a not in have["emails"]]
        address = self._address(values)
        if address and have and address in have["addresses"]:
            address = None
        phones += [(parsed.customer_id, n) for n in new_phones]
        emails += [(parsed.customer_id, a) for a in new_emails]
        if address:
            addresses.append((parsed.customer_id, *address))
        all_emails = (have["emails"] if have else []) + new_emails
        companies = list(have["companies"]) if have else []
        company = values.get("company")
        if company and company not in companies:
            companies.append(company)
        record.search_text = customer_search_text(name=record.name, latin_surname=record.latin_surname,
                                                  latin_given=record.latin_given, emails=all_emails,
                                                  companies=companies)
        if have is None:  # its COPY line (_CREATED), from texts: _copy_line's per-value dispatch cost more
            new_customer(_text_line((
                str(record.pk), record.kind, record.name, record.latin_surname, record.latin_given, record.gender,
                None if record.birthday is None else record.birthday.isoformat(), "zh-hans", record.source,
                _array_text(record.tags), record.notes, "", record.external_ref, record.search_text, self.now_text,
                self.now_text)))
        elif dirty or record.search_text != have["search_text"]:
            changed.append(record)
        audited.append((record, have, new_phones, all_emails, address))

    def _log_texts(self, audited: list) -> Iterator[str]:
        """The change log's COPY text: the new companies' lines, then each row's (one string a customer), in
        the batch's order. A generator, so ``write`` can build the first ones while a COPY is finishing."""
        if self.logs:
            yield "".join(self.logs)
        for record, have, new_phones, all_emails, address in audited:
            after = snapshot(record, owner=have["owner"] if have else "",
                             phones=(have["phones"] if have else []) + new_phones, emails=all_emails,
                             addresses=(have["address_text"] if have else []) + ([address_text(*address)] if address
                                                                                  else []))
            yield self._log_text(record.pk, have["snapshot"] if have else {}, after)

    def _apply(self, record, values: dict) -> bool:
        """Put the row's non-blank values on the customer; True when something changed."""
        dirty = False
        for key in ("name", "latin_surname", "latin_given", "gender", "birthday", "source", "notes", "external_ref"):
            if key in values and getattr(record, key) != values[key]:
                setattr(record, key, values[key])
                dirty = True
        if "tags" in values:
            tags = sorted(set(record.tags or []) | set(values["tags"]))
            if tags != (record.tags or []):
                record.tags, dirty = tags, True
        return dirty

    @staticmethod
    def _address(values: dict) -> tuple[str, str] | None:
        line, city = values.get("address", ""), values.get("city", "")
        if not line and not city:
            return None
        return (line or city, city)

    def _create_companies(self, batch: list[Parsed]) -> None:
        names = sorted({p.values["company"] for p in batch
                        if p.values.get("company") and self.ctx.companies.get(p.values["company"]) is None})
        if not names:
            return
        ids = _next_ids(Customer, len(names))
        _copy(Customer, ["id", "kind", "name", "source", "language", "tags", "search_text", "created_at", "updated_at",
                         "latin_surname", "latin_given", "gender", "notes", "industry", "external_ref"],
              ((pk, Customer.Kind.COMPANY.value, name, Customer.Source.IMPORT.value, "zh-hans", [],
                customer_search_text(name=name), self.now, self.now, "", "", "", "", "", "")
               for pk, name in zip(ids, names)))
        for pk, name in zip(ids, names):
            self.ctx.companies[name] = pk
            self._log(pk, {}, snapshot(_new_company(pk, name)))
        self.new_company_names = names

    def _load(self, batch: list[Parsed]) -> dict[int, dict]:
        """What the audit snapshot and search text need of the customers this batch updates."""
        ids = [p.customer_id for p in batch]
        if not ids:
            return {}
        loaded = {}
        user = _table(Customer._meta.get_field("owner").related_model)
        for values in _select(
                f"SELECT c.id, c.kind, c.name, c.latin_surname, c.latin_given, c.gender, c.birthday, c.source, c.tags, "
                f"c.notes, c.external_ref, c.search_text, u.email FROM {_table(Customer)} c "
                f"LEFT JOIN {user} u ON u.id = c.owner_id WHERE c.id = ANY(%s)", ids):
            record = SimpleNamespace(**dict(zip(_UPDATED, values[:-1])))
            loaded[record.pk] = {"customer": record, "owner": values[-1] or "", "phones": [], "emails": [],
                                 "addresses": set(), "address_text": [], "companies": [],
                                 "search_text": record.search_text}
        for customer_id, number in _select(
                f"SELECT customer_id, number FROM {_table(Phone)} WHERE customer_id = ANY(%s) ORDER BY id", ids):
            loaded[customer_id]["phones"].append(number)
        for customer_id, address in _select(
                f"SELECT customer_id, address FROM {_table(Email)} WHERE customer_id = ANY(%s) ORDER BY id", ids):
            loaded[customer_id]["emails"].append(address)
        for customer_id, line, city in _select(
                f"SELECT customer_id, line, city FROM {_table(Address)} WHERE customer_id = ANY(%s) ORDER BY id", ids):
            loaded[customer_id]["addresses"].add((line, city))
            loaded[customer_id]["address_text"].append(address_text(line, city))
        for person_id, name in _select(
                f"SELECT e.person_id, c.name FROM {_table(Employment)} e JOIN {_table(Customer)} c ON c.id = e.company_id "
                "WHERE e.person_id = ANY(%s)", ids):
            loaded[person_id]["companies"].append(name)
        for entry in loaded.values():
            entry["snapshot"] = snapshot(entry["customer"], owner=entry["owner"], phones=entry["phones"],
                                         emails=entry["emails"], addresses=entry["address_text"])
        return loaded

    def _employments(self, batch: list[Parsed]) -> None:
        rows = {(self.ctx.companies[p.values["company"]], p.customer_id): p.values
                for p in batch if p.values.get("company")}
        if not rows:
            return
        keys = ("department", "job_grade", "title", "is_booker")
        # The links on file, read with one statement of two bound arrays: the ORM's ``__in`` lists spelt out
        # thousands of ids as SQL (~10 ms a batch); model instances only for the few links that change.
        existing = {(company, person): (pk, dict(zip(keys, values)), active) for pk, company, person, active, *values
                    in _select(f"SELECT id, company_id, person_id, active, department, job_grade, title, is_booker "
                               f"FROM {_table(Employment)} WHERE person_id = ANY(%s) AND company_id = ANY(%s)",
                               list({person for _company, person in rows}),
                               list({company for company, _person in rows}))}
        changing, new = {}, []
        for key, values in rows.items():
            link = existing.get(key)
            if link is None:
                new.append((*key, values.get("job_grade", ""), values.get("department", ""), values.get("title", ""),
                            True, values.get("is_booker", False), True))
                continue
            pk, current, active = link
            if any(k in values and current[k] != values[k] for k in keys) or not active:
                changing[pk] = values
        _copy(Employment, ["company", "person", "job_grade", "department", "title", "is_traveler", "is_booker",
                           "active"], new)
        if changing:
            changed = list(Employment.objects.filter(pk__in=changing))
            for link in changed:
                values = changing[link.pk]
                for k in keys:
                    if k in values:
                        setattr(link, k, values[k])
                link.active = True
            Employment.objects.bulk_update(changed, [*keys, "active"])

    def _log(self, customer_id: int, before: dict, after: dict) -> None:
        self.logs.append(self._log_text(customer_id, before, after))

    def _log_text(self, customer_id: int, before: dict, after: dict) -> str:
        """The change-log rows, as COPY text: ~8 a new customer, so what is the same on each is written once, and
        the values are escaped only when the block shows one needs it (a tab, line break or backslash)."""
        found = changes(before, after)
        start = f"{customer_id}\t{self.actor_text}\t{_VIA}\t"
        end = f"\t{self.now_text}\n"
        text = "".join([f"{start}{name}\t{old}\t{new}{end}" for name, old, new in found])
        if _plain_copy_text(text, 6 * len(found), len(found), backslashes=len(found) if self.actor_id is None else 0):
            return text
        return "".join([f"{start}{name}\t{old.translate(_COPY_ESCAPES)}\t{new.translate(_COPY_ESCAPES)}{end}"
                        for name, old, new in found])


_VIA = ChangeLog.Via.IMPORT.value
_LOGGED = ["customer", "actor", "via", "field", "old", "new", "at"]  # a change-log COPY row (_Writer._log_text)
_LOG_HEAD = 5  # this share of a batch's change log is built before its customers' COPY is closed (_Writer.write)
# Columns of a new customer's COPY row (_Writer._prepare).
_CREATED = ["id", "kind", "name", "latin_surname", "latin_given", "gender", "birthday", "language", "source", "tags",
            "notes", "industry", "external_ref", "search_text", "created_at", "updated_at"]
# Customer columns an import reads and may change (the first is the key).
_UPDATED = ("pk", "kind", "name", "latin_surname", "latin_given", "gender", "birthday", "source", "tags", "notes",
            "external_ref", "search_text")


def _update_customers(records: list, now: datetime) -> None:
    """Write the changed customers' ``_UPDATED`` fields (and ``updated_at``) in one statement, the
    values sent as one array per column (``_select`` binds them on the server; RETURNING gives it rows
    to fetch). ``bulk_update`` built, in Python, a CASE with a branch per customer for each column."""
    if not records:
        return
    columns = ["id"] + [Customer._meta.get_field(name).column for name in _UPDATED[1:]]
    types = {"id": "bigint", "birthday": "date", "tags": "text"}  # tags travel as array literals, cast below
    values = [[getattr(record, name) for record in records] for name in _UPDATED]
    values[_UPDATED.index("tags")] = [_array_text(record.tags or []) for record in records]
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(c)} = v.{quote(c)}" + ("::text[]" if c == "tags" else "") for c in columns[1:])
    _select(f"UPDATE {_table(Customer)} c SET {assignments}, updated_at = %s FROM unnest("
            + ", ".join(f"%s::{types.get(c, 'text')}[]" for c in columns)
            + f") AS v({', '.join(quote(c) for c in columns)}) WHERE c.id = v.id RETURNING c.id", now, *values)


def _array_text(items: list) -> str:
    """A text[] literal: '{"a","b"}', quotes and backslashes escaped inside."""
    if not items:
        return "{}"
    texts = list(map(str, items))
    joined = '","'.join(texts)
    if "\\" not in joined and joined.count('"') == 2 * len(texts) - 2:  # nothing to escape (the usual case)
        return '{"' + joined + '"}'
    return "{" + ",".join('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"' for text in texts) + "}"


def _new_person(pk: int) -> SimpleNamespace:
    """A customer to be created, as a plain record: a model instance per row costs more than the COPY."""
    return SimpleNamespace(pk=pk, kind=Customer.Kind.PERSON.value, name="", latin_surname="", latin_given="", gender="",
                           birthday=None, source=Customer.Source.IMPORT.value, tags=[], notes="", external_ref="",
                           search_text="")


def _new_company(pk: int, name: str) -> SimpleNamespace:
    """A corporate account created for a row's company, as a plain record (for its change log)."""
    return SimpleNamespace(pk=pk, kind=Customer.Kind.COMPANY.value, name=name, latin_surname="", latin_given="",
                           gender="", birthday=None)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _select(sql: str, *params) -> list[tuple]:
    """Rows of a lookup by ``= ANY(%s)``, with the list sent as one bound array parameter.

    Django's psycopg cursors bind on the client, spelling a 2,000-item array out as SQL text; a
    server-side-binding cursor on the same connection (and so the same agency search_path) does not."""
    if any(isinstance(p, list) and not p for p in params):
        return []
    # A list of strings or integers travels as one array literal ('{"…","…"}', typed by the statement):
    # psycopg's array dumper costs ~2 µs an item in Python, a 5,000-row batch's lookups several ms each.
    params = [_array_text(p) if isinstance(p, list) and set(map(type, p)) <= {str, int} else p for p in params]
    with connection.cursor() as django_cursor:  # opens the connection and sets the agency's search_path
        with psycopg.Cursor(django_cursor.connection) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()


def _next_ids(model, count: int) -> list[int]:
    """Reserve primary keys from the table's sequence, so rows can be COPYed with their ids.

    The sequence is looked up once, in a subquery the planner may not fold into the outer one (OFFSET 0):
    written as ``nextval(pg_get_serial_sequence(…))`` it was looked up again for every id, and a 5,000-row
    batch's ids took 5–6× as long (bench/import_writes.py prints both)."""
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(seq) FROM (SELECT pg_get_serial_sequence(%s, 'id')::regclass AS seq OFFSET 0) "
                       "AS s, generate_series(1, %s)", [model._meta.db_table, count])
        return [row[0] for row in cursor.fetchall()]


@contextmanager
def _copy_stream(model, fields: list[str], *, chunk: int = 250) -> Iterator[Callable[[str], None]]:
    """``add(text)`` for lines of one COPY (text format; a text may hold several) sent every ``chunk`` texts, so the
    server inserts and indexes them (the customers' trigram and grams GIN indexes: most of a batch's COPY time)
    while the caller computes the next ones on the other core. The COPY starts with the first chunk: no rows, no
    statement. Anything raised inside the block aborts the COPY (and the caller's transaction rolls back as before)."""
    lines: list[str] = []
    with ExitStack() as stack:
        copy = None

        def send() -> None:
            nonlocal copy
            if copy is None:
                cursor = stack.enter_context(connection.cursor())
                copy = stack.enter_context(cursor.copy(_copy_sql(model, fields)))
            copy.write("".join(lines))
            lines.clear()

        def add(line: str) -> None:
            lines.append(line)
            if len(lines) >= chunk:
                send()

        yield add
        if lines:
            send()


def _copy_sql(model, fields: list[str]) -> str:
    columns = ", ".join(connection.ops.quote_name(model._meta.get_field(name).column) for name in fields)
    return f"COPY {_table(model)} ({columns}) FROM STDIN"


def _copy(model, fields: list[str], rows=(), *, lines: str = "") -> None:
    """Insert rows (tuples in ``fields`` order, or ``lines`` already in COPY's text format) with
    PostgreSQL COPY: ~10× faster than bulk_create.

    The rows are written as COPY's text format in one piece (``_copy_line``): psycopg's ``write_row``
    took ~9 µs a row, and a new customer comes with ~8 change-log rows."""
    data = lines + "".join(_copy_line(row) for row in rows)
    if not data:
        return
    with connection.cursor() as cursor:
        with cursor.copy(_copy_sql(model, fields)) as copy:
            copy.write(data)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _plain_copy_text(text: str, tabs: int, lines: int, *, backslashes: int = 0) -> bool:
    """Whether COPY text built from unescaped values needs no escaping: it holds exactly the tabs and line ends
    of its own layout, the backslashes it wrote itself (``\\N``) and no carriage return. Four scans in C instead
    of a ``translate`` per value."""
    return (text.count("\t") == tabs and text.count("\n") == lines and text.count("\\") == backslashes
            and "\r" not in text)


def _text_line(values: tuple) -> str:
    """One COPY line of texts (None: NULL), each escaped only when the line shows one needs it (``_plain_copy_text``)."""
    line = "\t".join(["\\N" if value is None else value for value in values]) + "\n"
    if _plain_copy_text(line, len(values) - 1, 1, backslashes=values.count(None)):
        return line
    return "\t".join(["\\N" if value is None else value.translate(_COPY_ESCAPES) for value in values]) + "\n"


def _copy_line(row: tuple) -> str:
    """One row in COPY's text format: tab-separated, ``\\N`` for NULL, backslash escapes."""
    return "\t".join(map(_copy_value, row)) + "\n"


def _copy_value(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, list):  # a text[]
        return _array_text(value).translate(_COPY_ESCAPES)
    raise TypeError(f"no COPY text for {type(value).__name__}")
