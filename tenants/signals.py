"""Keep the host → agency cache of ``AgencyMainMiddleware`` true: any saved or deleted agency or
domain drops its hosts' entries. (A queryset ``update()`` sends no signal: save agencies instead.)"""
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from caravan.tenancy.middleware import forget_hosts

from .models import Agency, Domain


@receiver([post_save, post_delete], sender=Agency)
def agency_changed(sender, instance: Agency, **kwargs) -> None:
    if instance.pk:
        forget_hosts(Domain.objects.filter(tenant_id=instance.pk).values_list("domain", flat=True))


@receiver([post_save, post_delete], sender=Domain)
def domain_changed(sender, instance: Domain, **kwargs) -> None:
    forget_hosts([instance.domain])
