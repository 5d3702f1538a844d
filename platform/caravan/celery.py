"""The Celery app. Tasks queued while an agency is active run in that agency's schema.

tenant-schemas-celery stamps the active schema into each message's headers and switches the
worker's connection to it before the task body runs. On top of that, agency work subclasses
:class:`caravan.tenancy.tasks.AgencyTask`, which refuses to be queued or run without an agency.
"""
import os

from celery.schedules import crontab
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")

app = CeleryApp("caravan")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Periodic jobs run on the platform side. A ``caravan.fan_out`` entry is how often the job is looked
# for: it queues the job only in live agencies where it has work due (tenants.jobs: due times per
# agency and job, pulled earlier by the services that create work, with a safety net per job).
app.conf.beat_schedule = {
    # Long jobs whose worker died (caravan.leases): resumed from their checkpoint, or given up with a
    # reason after JOB_MAX_ATTEMPTS. Platform jobs (agency exports, feed runs) and, fanned out, agency jobs.
    "leases-watchdog": {"task": "caravan.leases_watchdog", "schedule": crontab(minute="*")},
    "agency-leases-watchdog": {
        "task": "caravan.fan_out",
        "schedule": crontab(minute="*"),
        "args": ("leases.watchdog",),
    },
    # Billing: trial and grace-period ends, and a catch-up read of every subscription (public schema).
    "billing-refresh-agencies": {"task": "billing.refresh_agencies", "schedule": crontab(minute=41)},
    # Supplier feeds: pull those due (each feed has its own interval), and alert on stale or failing ones.
    "integrations-pull-due": {"task": "integrations.pull_due", "schedule": crontab(minute="*")},
    "integrations-check-health": {"task": "integrations.check_health", "schedule": crontab(minute="*/15")},
    # Agency schemas made ahead of time, so onboarding is a rename (tenants/schemas.py); also after each onboarding.
    "tenants-fill-schema-pool": {"task": "tenants.fill_schema_pool", "schedule": crontab(minute="*/5")},
    # Agency exports past EXPORT_RETENTION_HOURS deleted; agencies whose deletion is due purged (public schema).
    "portability-expire-exports": {"task": "portability.expire_exports", "schedule": crontab(minute=13)},
    "portability-purge-due-agencies": {"task": "portability.purge_due_agencies", "schedule": crontab(hour=4, minute=7)},
    "agency-clear-expired-sessions": {
        "task": "caravan.fan_out",
        "schedule": crontab(hour=3, minute=17),
        "args": ("accounts.clear_expired_sessions",),
    },
    "agency-forget-old-import-files": {
        "task": "caravan.fan_out",
        "schedule": crontab(hour=3, minute=37),
        "args": ("crm.forget_old_import_files",),
    },
    # Task reminders and complaint escalation: every 5 minutes (each run is idempotent).
    "agency-send-task-reminders": {
        "task": "caravan.fan_out",
        "schedule": crontab(minute="*/5"),
        "args": ("pipeline.send_task_reminders",),
    },
    "agency-escalate-complaints": {
        "task": "caravan.fan_out",
        "schedule": crontab(minute="*/5"),
        "args": ("care.escalate_complaints",),
    },
    # Service tiers: checked hourly, assigned once a night from 02:00 in each agency's time zone.
    "agency-assign-tiers": {
        "task": "caravan.fan_out",
        "schedule": crontab(minute=23),
        "args": ("tiers.assign_nightly",),
    },
    # Service-level clocks: near-breaches and breaches, every 5 minutes (each notified once).
    "agency-check-service-clocks": {
        "task": "caravan.fan_out",
        "schedule": crontab(minute="*/5"),
        "args": ("tiers.check_clocks",),
    },
    # Customer value: RFM scores and lifetime value, nightly.
    "agency-customer-value": {
        "task": "caravan.fan_out",
        "schedule": crontab(hour=2, minute=37),
        "args": ("value.compute",),
    },
    # Care automation: checked hourly, the day's greetings, holiday suggestions, win-back cases and
    # referral rewards once a day from 08:00 in each agency's time zone (each greeting sent once).
    "agency-care-automation": {
        "task": "caravan.fan_out",
        "schedule": crontab(minute=5),
        "args": ("loyalty.greetings",),
    },
    # E-mail campaigns: start the scheduled ones that are due and resume stalled sends, every minute.
    "agency-campaigns-tick": {
        "task": "caravan.fan_out",
        "schedule": crontab(minute="*"),
        "args": ("campaigns.tick",),
    },
    # Access log entries past ACCESS_LOG_RETENTION_DAYS deleted (crm.privacy); queued where the oldest is due.
    "agency-prune-access-log": {
        "task": "caravan.fan_out",
        "schedule": crontab(hour=3, minute=53),
        "args": ("privacy.prune_access_log",),
    },
    # Key-account visit slots for the next five weeks, made once a day (each slot once).
    "agency-visit-slots": {
        "task": "caravan.fan_out",
        "schedule": crontab(hour=3, minute=47),
        "args": ("visits.generate_slots",),
    },
    # The day after return: follow-up call task and satisfaction survey. Hourly, so an agency in
    # any time zone gets it early in its own morning; trips already followed up are skipped.
    "agency-after-trip": {
        "task": "caravan.fan_out",
        "schedule": crontab(minute=7),
        "args": ("care.after_trip",),
    },
    # Personal data retention: documents after the last trip, inactive customers (crm.retention).
    # Looked for hourly; queued only where a document or customer has come due (or a batch is left).
    "agency-retention": {
        "task": "caravan.fan_out",
        "schedule": crontab(minute=29),
        "args": ("retention.run",),
    },
}
