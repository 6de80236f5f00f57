from siyu.customers.services import customer_resolve


def test_resolving_a_known_phone_attaches_new_identifiers(db):
    first = customer_resolve(identifiers=[("phone", "13812341234")], attributes={"name": "张三"})
    again = customer_resolve(identifiers=[("phone", "+86 138-1234-1234"), ("jd_buyer", "jd_9")])
    assert again.customer.pk == first.customer.pk
    assert not again.created
    assert {i.kind for i in again.attached} == {"jd_buyer"}
