"""Create and change through a service: the plumbing an agency viewset's writes share.

A viewset declares what its writes read and the one service call of each; reading (``list``,
``retrieve``) is DRF's own ``ListModelMixin`` / ``RetrieveModelMixin`` over ``serializer_class``::

    class PlanViewSet(ListModelMixin, RetrieveModelMixin, ServiceCreateMixin, ServiceUpdateMixin,
                      AgencyViewSet):
        serializer_class = PlanOutput  # what it answers
        input_serializer = PlanInput  # what its writes read

        def create_service(self, data):
            return services.plan_save(actor=self.request.user, **data)

        def update_service(self, plan, data):
            return services.plan_save(actor=self.request.user, plan=plan, **data)

Each mixin adds one action, so a viewset offers (the router routes, the schema documents) only what
it lists. The fence stays ``AgencyViewSet``'s: the record comes from ``get_object()``. A service's
``ValidationError`` is the API's one 400 (``caravan.api.errors``). The schema takes the body from
``input_serializer`` (``caravan.api.schema``) and the answer from ``serializer_class``, unless an
action's own ``@extend_schema`` says otherwise.
"""
from rest_framework import status
from rest_framework.response import Response

WRITES = ("create", "update", "partial_update")


class _ServiceWrite:
    input_serializer = None
    update_serializer = None  # when a change reads other fields than a create
    # Answer with the record read again through agency_queryset() (for the annotations it adds).
    reread = False

    def input_class(self):
        """What this action's body is read with (the schema documents the same)."""
        if self.action in ("update", "partial_update") and self.update_serializer is not None:
            return self.update_serializer
        return self.input_serializer

    def validated(self, partial: bool = False) -> dict:
        data = self.input_class()(data=self.request.data, partial=partial)
        data.is_valid(raise_exception=True)
        return data.validated_data

    def answer(self, instance, code: int = status.HTTP_200_OK) -> Response:
        if self.reread:
            instance = self.agency_queryset().get(pk=instance.pk)
        return Response(self.serializer_class(instance).data, status=code)


class ServiceCreateMixin(_ServiceWrite):
    def create_service(self, data: dict):
        raise NotImplementedError

    def create(self, request):
        return self.answer(self.create_service(self.validated()), status.HTTP_201_CREATED)


class ServiceUpdateMixin(_ServiceWrite):
    """``PATCH``: only the fields sent are validated and handed to the service."""

    def update_service(self, instance, data: dict):
        raise NotImplementedError

    def partial_update(self, request, pk=None):
        instance = self.get_object()
        return self.answer(self.update_service(instance, self.validated(partial=True)))
