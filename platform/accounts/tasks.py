from celery import shared_task
from django.contrib.sessions.models import Session
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone, translation

from caravan.tenancy import require_agency
from caravan.tenancy.tasks import AgencyTask, agency_job

from .models import User


@shared_task(base=AgencyTask, name="accounts.send_invitation", autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_invitation(user_id: int, invited_by: str = "") -> str:
    """E-mail a staff member the link to set their password. Returns the address it went to."""
    from .services import invitation_url

    agency = require_agency()
    user = User.objects.get(pk=user_id)
    if not user.invitation_pending:
        return ""
    with translation.override(user.language or agency.language):
        context = {"user": user, "agency": agency, "url": invitation_url(user), "invited_by": invited_by}
        subject = render_to_string("accounts/email/invitation_subject.txt", context).strip()
        body = render_to_string("accounts/email/invitation.txt", context)
    send_mail(subject, body, None, [user.email])
    return user.email


@agency_job("accounts.clear_expired_sessions")
def clear_expired_sessions() -> int:
    """Per agency, because every agency keeps its sessions in its own schema. One DELETE."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()  # one DELETE (tenants/signals.py)
    return deleted
