"""Staff management inside the active agency: invite, change role, deactivate, reactivate.

Rules that hold on every path (page, API, onboarding):
- an e-mail is unique within the agency;
- seats follow staff: an invitation or reactivation beyond the plan's seat limit is refused, and
  the subscription's seat count follows the active staff (``billing.services``);
- the agency always keeps at least one active admin;
- nobody deactivates or demotes themselves (another admin must).
"""
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from billing import services as billing
from caravan.tenancy import require_agency

from .models import User
from .roles import Role


def invitation_url(user: User) -> str:
    """A one-time link to set a password; it stops working once a password is set."""
    agency = require_agency()
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("invitation_accept", kwargs={"uidb64": uid, "token": token}, urlconf=settings.ROOT_URLCONF)
    return agency.url(path)


def staff_invite(*, actor: User | None, email: str, full_name: str, role: str, language: str = "") -> User:
    from .tasks import send_invitation

    require_agency()
    email = (email or "").strip().lower()
    errors = {}
    try:
        validate_email(email)
    except ValidationError:
        errors["email"] = [_("Enter a valid e-mail address.")]
    else:
        if User.objects.filter(email__iexact=email).exists():
            errors["email"] = [_("Someone with this e-mail is already on the staff.")]
    if role not in Role.values:
        errors["role"] = [_("Choose a role.")]
    if not (full_name or "").strip():
        errors["full_name"] = [_("Enter the person's name.")]
    if errors:
        raise ValidationError(errors)
    agency = require_agency()
    billing.seat_available(agency)
    with transaction.atomic():
        user = User.objects.create_user(email=email, full_name=full_name.strip(), role=role,
                                        language=language, invited_at=timezone.now())
        send_invitation.delay(user.pk, invited_by=str(actor) if actor else "")
        billing.after_staff_change(agency)
    return user


def staff_resend_invitation(*, actor: User, user: User) -> None:
    from .tasks import send_invitation

    if not user.invitation_pending:
        raise ValidationError(_("This person has already set a password."))
    User.objects.filter(pk=user.pk).update(invited_at=timezone.now())
    send_invitation.delay(user.pk, invited_by=str(actor))


def _active_admins_other_than(user: User) -> int:
    return User.objects.filter(role=Role.ADMIN, is_active=True).exclude(pk=user.pk).count()


@transaction.atomic
def staff_update(*, actor: User, user: User, role: str | None = None, is_active: bool | None = None,
                 full_name: str | None = None) -> User:
    user = User.objects.select_for_update().get(pk=user.pk)
    errors = {}
    if role is not None and role not in Role.values:
        errors["role"] = [_("Choose a role.")]
    losing_admin = user.role == Role.ADMIN and user.is_active and (
        (role is not None and role != Role.ADMIN) or is_active is False
    )
    if losing_admin and user.pk == actor.pk:
        errors["role" if role is not None else "is_active"] = [
            _("You cannot remove your own admin rights; ask another admin.")
        ]
    elif losing_admin and _active_admins_other_than(user) == 0:
        errors["role" if role is not None else "is_active"] = [_("The agency must keep at least one active admin.")]
    if full_name is not None and not full_name.strip():
        errors["full_name"] = [_("Enter the person's name.")]
    if errors:
        raise ValidationError(errors)
    seats_change = is_active is not None and is_active != user.is_active
    if seats_change and is_active:
        billing.seat_available(require_agency(), field="is_active")
    if role is not None:
        user.role = role
    if full_name is not None:
        user.full_name = full_name.strip()
    if is_active is not None:
        user.is_active = is_active
    user.save()
    if is_active is False:
        _end_sessions(user)
    if seats_change:
        billing.after_staff_change(require_agency())
    return user


def _end_sessions(user: User) -> None:
    """A deactivated person is signed out everywhere and their API tokens stop working."""
    from django.contrib.sessions.models import Session

    from .tokens import tokens_delete_for

    tokens_delete_for(user)
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get("_auth_user_id") == str(user.pk):
            session.delete()


def user_set_language(*, user: User, language: str) -> None:
    from django.conf import settings

    if language not in dict(settings.LANGUAGES):
        raise ValidationError({"language": [_("Choose a language.")]})
    User.objects.filter(pk=user.pk).update(language=language)
    user.language = language
