"""Customer data for console tests: each staff member owns customers with identities and
relationships, so pages have every kind of row to render."""

from siyu.customers.models import Customer, Identity
from siyu.customers.tests.factories import (
    ChannelFactory,
    CustomerFactory,
    PhoneIdentityFactory,
    RelationshipFactory,
)


def customers_for(staff, count: int, *, channel=None) -> list[Customer]:
    """`count` customers owned by `staff`, each with a phone, an email and a relationship."""
    channel = channel or ChannelFactory(code="douyin", name="抖音")
    made = []
    for _ in range(count):
        customer = CustomerFactory(owner=staff, first_channel=channel)
        PhoneIdentityFactory(customer=customer)
        Identity.objects.create(
            customer=customer, kind=Identity.Kind.EMAIL, value=f"c{customer.pk}@example.com"
        )
        RelationshipFactory(customer=customer, staff=staff, channel=channel)
        made.append(customer)
    return made


def populate(org, count: int) -> None:
    for staff in (org.staff_a, org.staff_a2, org.staff_b):
        customers_for(staff, count)
