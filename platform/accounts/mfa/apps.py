from django.apps import AppConfig


class MfaConfig(AppConfig):
    name = "accounts.mfa"
    label = "mfa"
    verbose_name = "Two-step sign-in and sessions"
