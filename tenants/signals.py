"""Keep the host → agency cache of ``AgencyMainMiddleware`` true: any saved or deleted agency or
domain drops its hosts' entries. (A queryset ``update()`` sends no signal: save agencies instead.)"""
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django_tenants.signals import tenant_delete_callback

from caravan.tenancy.middleware import forget_hosts

from .models import Agency, Domain

# django-tenants listens to ``post_delete`` of *every* model (no sender) for its tenant model only.
# Django's deletion collector fast-deletes (one DELETE … WHERE, no rows loaded) only models nobody
# listens to, so that one receiver made every bulk delete load each row into memory. Listen to the
# agency only.
post_delete.disconnect(tenant_delete_callback)
post_delete.connect(tenant_delete_callback, sender=Agency, dispatch_uid="django_tenants_tenant_delete")


@receiver([post_save, post_delete], sender=Agency)
def agency_changed(sender, instance: Agency, **kwargs) -> None:
    if instance.pk:
        forget_hosts(Domain.objects.filter(tenant_id=instance.pk).values_list("domain", flat=True))


@receiver([post_save, post_delete], sender=Domain)
def domain_changed(sender, instance: Domain, **kwargs) -> None:
    forget_hosts([instance.domain])
