from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from accounts.services import user_set_language


@require_POST
def switch_language(request):
    """Django's set_language, and for a signed-in user the choice is remembered on their account."""
    response = set_language(request)
    language = request.POST.get("language")
    user = request.user
    if user.is_authenticated and language:
        try:
            user_set_language(user=user, language=language)
        except Exception:  # an unknown language is ignored here exactly as set_language ignores it
            pass
    return response
