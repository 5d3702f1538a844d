"""Search text of customers whose name parts have spaces between CJK characters ('李 娜'): recomputed
the way ``refresh_search_text`` now writes it, so '李 娜' and '李娜' find them (issue 20). Only those rows
are touched; the reverse leaves them (the collapsed text is what the code writes from now on)."""

from django.db import migrations

CJK_SPACE = r"[⺀-鿿가-힯豈-﫿][[:space:]]+[⺀-鿿가-힯豈-﫿]"


def collapse(apps, schema_editor):
    from crm.customers.snapshot import customer_search_text  # a pure function: the one rule for search text

    Customer = apps.get_model("crm", "Customer")
    Employment = apps.get_model("crm", "Employment")
    Email = apps.get_model("crm", "Email")
    for customer in Customer.objects.filter(search_text__regex=CJK_SPACE).iterator(chunk_size=500):
        companies = []
        if customer.kind == "person":
            companies = list(Employment.objects.filter(person=customer).values_list("company__name", flat=True))
        text = customer_search_text(
            name=customer.name, latin_surname=customer.latin_surname, latin_given=customer.latin_given,
            emails=list(Email.objects.filter(customer=customer).values_list("address", flat=True)),
            companies=companies)
        if text != customer.search_text:
            Customer.objects.filter(pk=customer.pk).update(search_text=text)


class Migration(migrations.Migration):

    dependencies = [("crm", "0005_leases_customerexport")]

    operations = [migrations.RunPython(collapse, migrations.RunPython.noop)]
