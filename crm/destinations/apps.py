from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DestinationsConfig(AppConfig):
    """The destination knowledge base (R-CUST-10): articles per country, region or city, visa notes per
    nationality, attachments, and who wrote what. Both a tenant app (each agency's own articles) and a
    shared app (the operators' shared base in ``public``, which every agency reads and copies)."""

    name = "crm.destinations"
    label = "destinations"
    verbose_name = _("Destinations")
