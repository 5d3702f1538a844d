"""Issue 22: making the import faster must not change what it does.

The bench's own file (``bench.customers.write_csv``: Chinese and Latin names, phones in six shapes, in-file
duplicates, bad cells, companies, tags), 1,200 rows, with every 20th customer already on file under another
name, is checked and imported in batches of 250 rows. Everything the dry run reports and the import writes
(customers, phones, e-mails, addresses, employments, change log, the job's counts and row errors) is reduced
to a digest, which was taken from the code before the issue 22 changes to the import's parsing, matching and
writing (commit d236800). A change that alters any of it fails here; a deliberate one updates the digest and
says why. A new customer's change log became one ``created`` entry holding every value: it is read back field by
field here, so the digest still proves that it holds what the field-by-field rows held."""
import hashlib
import json
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django_tenants.utils import tenant_context

from bench import customers as bench_customers
from crm.customers import demo, imports

from .conftest import field_by_field, staff

ROWS = 1200
DRY_RUN = "ee179ad3274994f314568ff78ca9af0d1153dd3d16c2404a03f6dbd447538490"
IMPORTED = "8f471a32508d7aa6b15be3bedfdfdb14a39788165cc642335fc938c81b6c85af"


class _Day(date):
    @classmethod
    def today(cls):
        return cls(2026, 12, 1)


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False, sort_keys=True, default=str).encode()).hexdigest()


def _written() -> dict:
    """What the import wrote, keyed by reference (people) or name (companies), not by ids."""
    tables = {
        "customers": "SELECT kind, name, latin_surname, latin_given, gender, birthday, source, tags, notes, external_ref, "
                     "search_text, language, industry FROM crm_customer",
        "phones": "SELECT c.external_ref, c.name, p.number, p.label FROM crm_phone p JOIN crm_customer c ON c.id = "
                  "p.customer_id",
        "emails": "SELECT c.external_ref, c.name, e.address, e.label FROM crm_email e JOIN crm_customer c ON c.id = "
                  "e.customer_id",
        "addresses": "SELECT c.external_ref, a.label, a.line, a.city, a.postcode, a.country FROM crm_address a "
                     "JOIN crm_customer c ON c.id = a.customer_id",
        "employments": "SELECT k.name, c.external_ref, e.job_grade, e.department, e.title, e.is_traveler, e.is_booker, "
                       "e.active FROM crm_employment e JOIN crm_customer c ON c.id = e.person_id "
                       "JOIN crm_customer k ON k.id = e.company_id",
        "change_log": "SELECT c.external_ref, c.name, l.via, l.field, l.old, l.new, l.actor_id IS NULL, "
                      "l.at = c.updated_at FROM crm_changelog l JOIN crm_customer c ON c.id = l.customer_id",
    }
    out = {}
    with connection.cursor() as cursor:
        for name, sql in tables.items():
            cursor.execute(sql)
            rows = [list(row) for row in cursor.fetchall()]
            if name == "change_log":  # a creation's one entry, read back field by field, as the old code wrote it
                rows = [[*row[:3], *entry, *row[6:]] for row in rows for entry in field_by_field(*row[3:6])]
            out[name] = sorted(rows, key=lambda row: json.dumps(row, default=str))
    return out


@pytest.mark.django_db
def test_the_bench_file_is_checked_and_imported_exactly_as_before(alpha, media, tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "date", _Day)
    monkeypatch.setattr(imports, "BATCH_SIZE", 250)
    path, seed = tmp_path / "客户资料.csv", tmp_path / "已有客户.csv"
    bench_customers.write_csv(path, ROWS)
    bench_customers.write_seed(path, seed)
    with tenant_context(alpha):
        admin = staff(alpha, "admin")
        jobs = []
        for file in (seed, path):
            job, _headers = imports.job_create(actor=admin, upload=SimpleUploadedFile(file.name, file.read_bytes()))
            imports.job_read(job)
            jobs.append(job)
        imports.run(jobs[0])
        report = imports.check(jobs[1])
        job = imports.run(jobs[1])
        assert (report["create"], report["update"], report["skip"]) == (
            job.created_count, job.updated_count, job.processed_rows - job.created_count - job.updated_count)
        assert job.updated_count >= ROWS // 20 - 5 and job.error_count > 10  # the file is what the digest assumes
        written = {"job": [job.created_count, job.updated_count, job.error_count, job.processed_rows, job.errors],
                   **_written()}
        assert _digest(report) == DRY_RUN
        assert _digest(written) == IMPORTED
