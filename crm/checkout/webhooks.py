"""The agency's Stripe webhook, on the agency's host (``/checkout/stripe/webhook/``): verified with the
agency's own signing secret, stored once, answered at once; ``tasks.process_event`` does the work."""
import logging

from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from caravan.lazy import lazy_module
from caravan.tenancy import current_agency

from . import services
from .tasks import process_event

stripe = lazy_module("stripe")  # about 30 MB: imported by the first Stripe call, not by every web worker

log = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request):
    if current_agency() is None:
        raise Http404
    try:
        event = services.webhook_receive(payload=request.body, signature=request.headers.get("Stripe-Signature", ""))
    except (ValueError, stripe.SignatureVerificationError):
        log.warning("Agency Stripe webhook refused: not connected, bad payload or signature")
        return HttpResponseBadRequest("bad signature")
    if event is not None:
        process_event.delay(event.event_id)  # an AgencyTask: sent once the stored event commits
    return HttpResponse("ok")
