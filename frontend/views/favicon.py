"""/favicon.ico, which browsers ask for on their own: the static icon, not a 404, on both kinds of host."""
from django.templatetags.static import static
from django.views.generic import RedirectView


class FaviconView(RedirectView):
    def get_redirect_url(self, *args, **kwargs):
        return static("favicon.svg")
