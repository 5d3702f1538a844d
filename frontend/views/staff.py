"""Staff pages: list, invite, edit role/status. The rules live in accounts.services."""
from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts import services, signin
from accounts.models import User
from accounts.roles import Cap, Role
from caravan.forms import errors_onto

from .base import AgencyPage


class InviteForm(forms.Form):
    full_name = forms.CharField(label=gettext_lazy("Name"), max_length=150)
    email = forms.EmailField(label=gettext_lazy("E-mail"))
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=Role.choices)
    language = forms.ChoiceField(label=gettext_lazy("Language"), choices=settings.LANGUAGES)


class StaffEditForm(forms.Form):
    full_name = forms.CharField(label=gettext_lazy("Name"), max_length=150)
    role = forms.ChoiceField(label=gettext_lazy("Role"), choices=Role.choices)
    is_active = forms.BooleanField(label=gettext_lazy("Active"), required=False)


class StaffListView(AgencyPage, View):
    required_cap = Cap.STAFF_VIEW

    def get(self, request):
        staff = User.objects.all()
        query = request.GET.get("q", "").strip()
        if query:
            staff = staff.filter(Q(full_name__icontains=query) | Q(email__icontains=query))
        role = request.GET.get("role")
        if role in Role.values:
            staff = staff.filter(role=role)
        template = "frontend/staff/_rows.html" if request.htmx else "frontend/staff/list.html"
        can_manage = request.user.can(Cap.STAFF_MANAGE)
        lockouts = signin.locked_out() if can_manage and not request.htmx else []
        return render(request, template, {"staff": staff, "query": query, "role": role, "roles": Role.choices,
                                          "can_manage": can_manage, "lockouts": lockouts})


class StaffInviteView(AgencyPage, View):
    required_cap = Cap.STAFF_MANAGE

    def get(self, request):
        return render(request, "frontend/staff/invite.html", {"form": InviteForm(initial={"role": Role.SALES})})

    def post(self, request):
        form = InviteForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                user = services.staff_invite(actor=request.user, **form.cleaned_data)
                messages.success(request, _("Invitation sent to %(email)s.") % {"email": user.email})
                return redirect("staff_list")
        return render(request, "frontend/staff/invite.html", {"form": form}, status=400)


class StaffEditView(AgencyPage, View):
    required_cap = Cap.STAFF_MANAGE

    def get(self, request, pk):
        member = get_object_or_404(User, pk=pk)
        form = StaffEditForm(initial={"full_name": member.full_name, "role": member.role, "is_active": member.is_active})
        return render(request, "frontend/staff/edit.html", {"member": member, "form": form,
                                                            "user_can_hand_over": request.user.can(Cap.CUSTOMERS_MANAGE)})

    def post(self, request, pk):
        member = get_object_or_404(User, pk=pk)
        if request.POST.get("action") == "resend":
            try:
                services.staff_resend_invitation(actor=request.user, user=member)
                messages.success(request, _("Invitation sent again."))
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            return redirect("staff_edit", pk=member.pk)
        form = StaffEditForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                services.staff_update(actor=request.user, user=member, **form.cleaned_data)
                messages.success(request, _("Saved."))
                return redirect("staff_list")
        return render(request, "frontend/staff/edit.html", {"member": member, "form": form}, status=400)
