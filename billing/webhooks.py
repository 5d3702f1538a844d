"""The Stripe webhook endpoint, on the platform domain: verify, store once, answer at once; the
work happens in ``tasks.process_event``."""
import logging

from django.http import HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from caravan.lazy import lazy_module

from . import services
from .tasks import process_event

stripe = lazy_module("stripe")  # about 30 MB: imported by the first Stripe call, not by every web worker

log = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request):
    try:
        event = services.webhook_receive(payload=request.body, signature=request.headers.get("Stripe-Signature", ""))
    except (ValueError, stripe.SignatureVerificationError):
        log.warning("Stripe webhook refused: bad payload or signature")
        return HttpResponseBadRequest("bad signature")
    if event is not None:
        process_event.delay(event.event_id)  # a PlatformTask: sent once the stored event commits
    return HttpResponse("ok")
