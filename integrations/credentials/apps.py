from django.apps import AppConfig


class FeedCredentialsConfig(AppConfig):
    name = "integrations.credentials"
    label = "feed_credentials"
    default_auto_field = "django.db.models.BigAutoField"
