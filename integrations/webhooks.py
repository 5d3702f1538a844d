"""The signed push endpoint a supplier posts a feed message to (no page: a machine endpoint)."""
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import services
from .models import FeedRun


@csrf_exempt
@require_POST
def push(request, push_key):
    """A supplier pushes a message: verified while it streams to the spool, then run in the background."""
    try:
        length = int(request.headers.get("Content-Length") or 0) or None
    except ValueError:
        length = None
    try:
        feed, path = services.push_receive(push_key=push_key, signature=request.headers.get("X-Caravan-Signature", ""),
                                           body=request, length=length)
    except services.PushRefused as exc:
        return JsonResponse({"error": str(exc)}, status=exc.status)
    services.queue_file(feed, path, trigger=FeedRun.Trigger.PUSH)
    return JsonResponse({"accepted": True}, status=202)
