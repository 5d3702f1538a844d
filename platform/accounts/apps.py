from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from .signin import forget_failures_of

        user_logged_in.connect(forget_failures_of, dispatch_uid="accounts.signin.forget_failures_of")
