"""``{% opens "url_name" arg… as name %}``: whether the reader may open that page (``frontend.views.base.opens_for``)."""
from django import template

from frontend.views.base import opens_for

register = template.Library()


@register.simple_tag(takes_context=True)
def opens(context, url_name, *args):
    request = context.get("request")
    return opens_for(getattr(request, "user", None), url_name, *args)
