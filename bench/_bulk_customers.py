"""A big agency in minutes, for the search benches: what search reads, written with COPY.

``crm/customers/demo.py`` writes through the ORM (~500 people/s here: 35 minutes for 1,000,000). This writes
only the rows a search reads — people and corporate accounts with their ``search_text`` (built by
:func:`crm.customers.snapshot.customer_search_text`, as the services build it), their phones (E.164) and e-mails,
who works where, and about 1 % merged-away duplicates (``merged_into`` set, empty search text, their phones and
e-mails on the record they were merged into, as ``customer_merge`` leaves them) — with ``COPY`` in one
transaction: the tables' secondary indexes and constraints are dropped first and rebuilt once at the end (the
trigram index is built in one pass instead of row by row), the id sequence is advanced past the rows written,
then ``ANALYZE``. If anything fails, nothing is left half-written.

People, names, spellings and e-mails come from ``demo.Generator`` (the same mix as the demo data). Chinese
mobile numbers skip phonenumbers' parser (70 % of the time): every carrier prefix is checked once through
``phone_e164``, after which ``+86`` + the digits is exactly what it returns. Not written: contacts, documents,
preferences, change log (search reads none of them); the screen-pop and import benches keep the demo path.
"""
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from accounts.roles import Role
from crm.customers.demo import (CITIES, DEPARTMENTS, MOBILE_PREFIXES, SOURCES, TAGS, Generator, _weighted)
from crm.customers.models import Customer, Email, Employment, Phone
from crm.customers.normalize import phone_e164
from crm.customers.snapshot import customer_search_text

CHUNK = 20000
TABLES = (Customer, Phone, Email, Employment)


class FastGenerator(Generator):
    """demo.Generator with Chinese mobiles built directly (each prefix checked once through phone_e164)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for prefix in MOBILE_PREFIXES:
            sample = f"{prefix}12345678"
            assert phone_e164(sample, "CN") == "+86" + sample, prefix

    def mobile(self, country: str = "CN") -> str:
        if country != "CN" or self.region != "CN":
            return super().mobile(country)
        rng = self.rng
        while True:
            number = f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"
            if number not in self.phones:
                self.phones.add(number)
                return number


def load_customers(agency, *, people: int, seed: int = 1, merged_share: float = 0.01, progress=None) -> dict:
    """Add ``people`` individuals (and one corporate account per 80 of them) to ``agency``. Returns row counts."""
    with tenant_context(agency), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        owners = list(User.objects.filter(is_active=True, is_operator=False, role__in=[Role.SALES, Role.MANAGER])
                      .values_list("pk", flat=True))
        gen = FastGenerator(seed, region=agency.default_region,
                            taken_phones=Phone.objects.values_list("number", flat=True),
                            taken_emails=Email.objects.values_list("address", flat=True))
        gen.company_names.update(Customer.objects.filter(kind=Customer.Kind.COMPANY).values_list("name", flat=True))
        rebuild = _drop_indexes(cursor)
        loader = _Loader(cursor, gen, owners, merged_share)
        loader.companies(max(1, people // 80))
        for start in range(0, people, CHUNK):
            loader.people(min(CHUNK, people - start))
            if progress:
                progress(min(start + CHUNK, people), people)
        for statement in rebuild:
            cursor.execute(statement)
        cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [Customer._meta.db_table, loader.next_id - 1])
    with tenant_context(agency), connection.cursor() as cursor:
        for model in TABLES:
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    return loader.counts


def _drop_indexes(cursor) -> list[str]:
    """Drop the secondary indexes, unique and foreign-key constraints of TABLES; the statements that rebuild them."""
    tables = [m._meta.db_table for m in TABLES]
    cursor.execute(
        """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype FROM pg_constraint
           WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('f', 'u', 'x') ORDER BY contype = 'f'""",
        [tables])
    constraints = cursor.fetchall()
    cursor.execute(
        """SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
           WHERE indrelid = ANY(%s::regclass[]) AND NOT indisprimary
             AND indexrelid NOT IN (SELECT conindid FROM pg_constraint WHERE conindid <> 0)""", [tables])
    indexes = cursor.fetchall()
    for table, name, _definition, _kind in reversed(constraints):  # foreign keys first
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _definition in indexes:
        cursor.execute(f"DROP INDEX {name}")
    return ([definition for _name, definition in indexes]
            + [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for table, name, definition, _k in constraints])


class _Loader:
    def __init__(self, cursor, gen: FastGenerator, owners: list[int], merged_share: float):
        self.cursor, self.gen, self.rng, self.owners, self.merged_share = cursor, gen, gen.rng, owners, merged_share
        self.now = timezone.now()
        self.counts: dict[str, int] = {}
        self.companies_written: list[tuple[int, str, str]] = []  # (id, name, e-mail domain)
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [Customer._meta.db_table])
        self.next_id = cursor.fetchone()[0]
        self.columns = [f.column for f in Customer._meta.concrete_fields]
        self.id_at = self.columns.index("id")
        self.defaults = {f.column: f.get_default() for f in Customer._meta.concrete_fields}

    def _customer(self, **values) -> tuple:
        values["id"], self.next_id = self.next_id, self.next_id + 1
        values.setdefault("updated_at", values["created_at"])
        return tuple(values[c] if c in values else self.defaults[c] for c in self.columns)

    def _copy(self, model, columns: list[str], rows: list) -> None:
        if not rows:
            return
        with self.cursor.copy(f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        self.counts[model.__name__] = self.counts.get(model.__name__, 0) + len(rows)

    def _owner(self):
        return self.rng.choice(self.owners) if self.owners and self.rng.random() < 0.92 else None

    def _created_at(self):
        return self.now - timedelta(days=self.rng.randint(0, 6 * 365), seconds=self.rng.randint(0, 86399))

    def companies(self, count: int) -> None:
        rng, gen = self.rng, self.gen
        customers, phones, emails = [], [], []
        for _ in range(count):
            name, domain, industry = gen.company()
            email = f"travel@{domain}"
            email = "" if email in gen.emails else email  # branches of one group share a domain: the first has it
            if email:
                gen.emails.add(email)
            row = self._customer(kind=Customer.Kind.COMPANY, name=name, industry=industry, owner_id=self._owner(),
                                 source=Customer.Source.CORPORATE, created_at=self._created_at(),
                                 tags=["商务"] + (["VIP"] if rng.random() < 0.2 else []),
                                 search_text=customer_search_text(name=name, emails=[email] if email else []))
            customers.append(row)
            pk = row[self.id_at]
            self.companies_written.append((pk, name, domain))
            if number := gen.landline(rng.choice(CITIES)[1]):
                phones.append((pk, number, "总机"))
            if email:
                emails.append((pk, email, "差旅"))
        self._copy(Customer, self.columns, customers)
        self._copy(Phone, ["customer_id", "number", "label"], phones)
        self._copy(Email, ["customer_id", "address", "label"], emails)

    def people(self, count: int) -> None:
        rng, gen = self.rng, self.gen
        customers, phones, emails, jobs = [], [], [], []
        for _ in range(count):
            employer = rng.choice(self.companies_written) if rng.random() < 0.4 else None
            company_id, company, domain = employer or (None, "", "")
            person = gen.person(email_domain=domain if rng.random() < 0.85 else "")
            tags = set(rng.sample(TAGS, rng.choice([0, 0, 1, 1, 2, 3]))) | ({"商务"} if employer else set())
            if rng.random() < 0.08:
                tags.add("VIP")
            created = self._created_at()
            common = dict(kind=Customer.Kind.PERSON, name=person.name, latin_surname=person.latin_surname,
                          latin_given=person.latin_given, gender=person.gender, birthday=person.birthday,
                          language=person.language, tags=sorted(tags),
                          source=Customer.Source.CORPORATE if employer else _weighted(rng, SOURCES))
            row = self._customer(**common, owner_id=self._owner(), created_at=created,
                                 search_text=customer_search_text(
                                     name=person.name, latin_surname=person.latin_surname,
                                     latin_given=person.latin_given, emails=person.emails,
                                     companies=[company] if employer else []))
            pk = row[self.id_at]
            customers.append(row)
            phones += [(pk, n, "手机" if i == 0 else "备用") for i, n in enumerate(person.phones)]
            emails += [(pk, a, "工作" if employer else "个人") for a in person.emails]
            if employer:
                jobs.append((company_id, pk, f"P{rng.randint(1, 8)}", rng.choice(DEPARTMENTS), "", True, False,
                             rng.random() < 0.97))
            if rng.random() < self.merged_share:  # entered twice, later merged: a pointer with no search text
                customers.append(self._customer(**common, created_at=created + timedelta(days=rng.randint(1, 300)),
                                                merged_into_id=pk, search_text=""))
        self._copy(Customer, self.columns, customers)
        self._copy(Phone, ["customer_id", "number", "label"], phones)
        self._copy(Email, ["customer_id", "address", "label"], emails)
        self._copy(Employment, ["company_id", "person_id", "job_grade", "department", "title", "is_traveler",
                                "is_booker", "active"], jobs)
