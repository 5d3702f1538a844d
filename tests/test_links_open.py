"""A page links another only when its reader may open it (issue 20: a service agent's dashboard linked the
service-level clocks they are refused; finance met 'Care automation' and campaign results the same way).
Each role's dashboard, customer card and campaigns list: every same-site link answers something other than 403."""
import re

import pytest
from django_tenants.utils import tenant_context

from crm.customers import services as crm_services
from crm.customers.models import ChangeLog
from frontend.views.base import opens_for

from .conftest import staff

pytestmark = pytest.mark.django_db
ROLES = ["admin", "manager", "sales", "call_center", "service", "finance"]
HREF = re.compile(r'href="(/[^"#?]*)')
SKIP = ("/static/", "/logout", "/account/sign-out", "/language")


@pytest.mark.parametrize("role", ROLES)
def test_every_link_on_a_roles_everyday_pages_opens_for_that_role(page_client, alpha, role):
    with tenant_context(alpha):
        customer = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name="链接 Links",
                                                owner=staff(alpha, "sales"))
    client = page_client("alpha", role)
    refused = []
    for page in ("/", f"/customers/{customer.pk}/", "/campaigns/", "/service-levels/"):
        response = client.get(page)
        if response.status_code != 200:
            continue
        for link in sorted(set(HREF.findall(response.content.decode()))):
            if link.startswith(SKIP):
                continue
            if client.get(link).status_code == 403:
                refused.append(f"{page} → {link}")
    assert not refused, f"{role} is shown links it is refused:\n" + "\n".join(refused)


def test_opens_for_follows_the_pages_own_fence(alpha):
    with tenant_context(alpha):
        assert opens_for(staff(alpha, "manager"), "service_clock_list")
        assert not opens_for(staff(alpha, "finance"), "care_home")
        assert not opens_for(staff(alpha, "finance"), "campaign_results", 1)
        assert opens_for(staff(alpha, "admin"), "campaign_results", 1)
        assert not opens_for(None, "customer_list")
