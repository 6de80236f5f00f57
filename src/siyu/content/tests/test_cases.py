"""Case materials (案例素材): a delivered order turned into a draft testimonial."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from siyu.commerce.models import Order, OrderItem
from siyu.content.models import Material
from siyu.content.services import case_material_create
from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.customers.tests.factories import ChannelFactory, CustomerFactory

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)


def order_for(customer, status=Order.Status.COMPLETED, *, amount="1299.00", refund="0", **kw):
    order = Order.objects.create(
        channel=ChannelFactory(code="tmall", name="天猫"),
        external_id=kw.pop("external_id", f"T{Order.objects.count() + 1:05d}"),
        customer=customer,
        status=status,
        amount=Decimal(amount),
        refund_amount=Decimal(refund),
        paid_at=kw.pop("paid_at", timezone.now()),
    )
    OrderItem.objects.create(order=order, title="修护精华", quantity=2, unit_price=Decimal("500"))
    OrderItem.objects.create(order=order, title="面霜", quantity=1, unit_price=Decimal("299"))
    return order


def new_url(order) -> str:
    return reverse("content:case_new", args=[order.pk])


def panel_url(customer) -> str:
    return reverse("content:customer_case_orders", args=[customer.pk])


# The service


def test_case_is_a_draft_linked_to_the_order_and_audited(org):
    order = order_for(CustomerFactory(owner=org.staff_a, name="王小明"))

    material = case_material_create(
        order=order,
        owner=org.manager_a,
        actor=org.manager_a.user,
        title="敏感肌的三周",
        quote="用了三周，泛红少了很多。\n会回购！",
        customer_label="王**",
        products="修护精华 ×2",
        amount=Decimal("1299.00"),
    )

    material.refresh_from_db()
    assert (material.kind, material.status, material.source_order_id) == (
        Material.Kind.CASE,
        Material.Status.DRAFT,
        order.pk,
    )
    assert "<blockquote>" in material.body and "会回购！" in material.body
    assert "王**" in material.body and "¥1299.00" in material.body
    assert "王小明" not in material.body + material.summary
    entry = AuditLog.objects.get(action=AuditLog.Action.CREATE, target_id=str(material.pk))
    assert entry.actor == org.manager_a.user
    assert entry.detail == {"order_id": order.pk, "customer_id": order.customer_id}


def test_case_quote_is_escaped_not_trusted(org):
    order = order_for(CustomerFactory(owner=org.staff_a))
    material = case_material_create(
        order=order,
        owner=None,
        actor=org.admin.user,
        title="t",
        quote='<script>alert(1)</script><img src=x onerror="alert(2)">',
    )
    assert "<script" not in material.body and "<img" not in material.body
    assert "<p>&lt;script&gt;alert(1)&lt;/script&gt;" in material.body


@pytest.mark.parametrize("status", [Order.Status.PENDING, Order.Status.PAID, Order.Status.REFUNDED])
def test_only_delivered_orders_become_cases(org, status):
    order = order_for(CustomerFactory(owner=org.staff_a), status)
    with pytest.raises(DomainError) as exc:
        case_material_create(order=order, owner=None, actor=org.admin.user, title="t", quote="q")
    assert exc.value.field == "order"
    assert not Material.objects.exists()


def test_partially_refunded_order_may_become_a_case(org):
    order = order_for(CustomerFactory(), Order.Status.PARTIALLY_REFUNDED, refund="299")
    material = case_material_create(
        order=order, owner=None, actor=org.admin.user, title="t", quote="还是很满意"
    )
    assert material.source_order == order


# The pages


def test_profile_panel_lists_delivered_orders_for_leads(org, login):
    customer = CustomerFactory(owner=org.staff_a)
    delivered = order_for(customer)
    pending = order_for(customer, Order.Status.PAID)

    html = login(org.manager_a).get(panel_url(customer)).content.decode()

    assert f'id="case-order-{delivered.pk}"' in html
    assert f'id="case-order-{pending.pk}"' not in html
    assert "修护精华 ×2" in html
    assert new_url(delivered) in html
    profile = login(org.manager_a).get(reverse("customers:detail", args=[customer.pk]))
    assert panel_url(customer) in profile.content.decode()


def test_profile_panel_is_for_leads_in_scope_only(org, login):
    customer = CustomerFactory(owner=org.staff_a)
    order_for(customer)

    assert login(org.staff_a).get(panel_url(customer)).status_code == 404
    assert login(org.manager_b).get(panel_url(customer)).status_code == 404
    profile = login(org.staff_a).get(reverse("customers:detail", args=[customer.pk]))
    assert panel_url(customer) not in profile.content.decode()


def test_profile_panel_query_count_is_flat(org, login, django_assert_num_queries):
    customer = CustomerFactory(owner=org.staff_a)
    client = login(org.manager_a)
    order_for(customer)
    client.get(panel_url(customer))
    # session, user, staff, the customer (tombstone check, then the row), the orders, their
    # items, the cases made from them
    with django_assert_num_queries(8):
        client.get(panel_url(customer))
    for _ in range(6):
        order_for(customer)
    with django_assert_num_queries(8):
        response = client.get(panel_url(customer))
    assert len(response.context["orders"]) == 7


def test_form_is_prefilled_with_masked_name_products_and_kept_amount(org, login):
    customer = CustomerFactory(owner=org.staff_a, name="王小明")
    order = order_for(customer, Order.Status.PARTIALLY_REFUNDED, amount="1299.00", refund="299")

    response = login(org.manager_a).get(new_url(order))

    assert response.status_code == 200
    form = response.context["form"]
    assert form["customer_label"].value() == "王**"
    assert form["products"].value() == "修护精华 ×2、面霜 ×1"
    assert form["amount"].value() == Decimal("1000.00")
    assert "王小明" not in response.content.decode()


def test_posting_creates_the_draft_case_which_joins_the_library(org, login):
    order = order_for(CustomerFactory(owner=org.staff_a, name="王小明"))
    client = login(org.manager_a)
    image = SimpleUploadedFile("after.png", PNG, content_type="image/png")

    response = client.post(
        new_url(order),
        {
            "title": "三周见效",
            "customer_label": "王**",
            "products": "修护精华 ×2",
            "amount": "1299.00",
            "quote": "皮肤稳定多了",
            "image": image,
        },
    )

    material = Material.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("content:material_edit", args=[material.pk])
    assert (material.kind, material.status, material.owner) == ("case", "draft", org.manager_a)
    assert material.image.name.endswith(".png")
    library = client.get(reverse("content:materials"), {"kind": "case"})
    assert "三周见效" in library.content.decode()
    others = client.get(reverse("content:materials"), {"kind": "article"})
    assert "三周见效" not in others.content.decode()


def test_missing_quote_is_a_400_naming_the_field(org, login):
    order = order_for(CustomerFactory(owner=org.staff_a))
    response = login(org.manager_a).post(new_url(order), {"title": "t", "quote": "  "})
    assert response.status_code == 400
    assert response.context["form"].errors["quote"]
    assert not Material.objects.exists()


@pytest.mark.parametrize("amount", ["-1", "abc", "1" * 20])
def test_bad_amount_is_a_400(org, login, amount):
    order = order_for(CustomerFactory(owner=org.staff_a))
    response = login(org.manager_a).post(
        new_url(order), {"title": "t", "quote": "q", "amount": amount}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["amount"]


def test_undelivered_order_answers_400_with_the_reason(org, login):
    order = order_for(CustomerFactory(owner=org.staff_a), Order.Status.PAID)
    client = login(org.manager_a)

    assert client.get(new_url(order)).status_code == 400
    response = client.post(new_url(order), {"title": "t", "quote": "q"})

    assert response.status_code == 400
    assert "已完成或部分退款的订单" in response.content.decode()
    assert not Material.objects.exists()


def test_out_of_scope_or_unknown_orders_are_404(org, login):
    order = order_for(CustomerFactory(owner=org.staff_a))
    assert login(org.manager_b).get(new_url(order)).status_code == 404
    assert login(org.staff_a).get(new_url(order)).status_code == 404  # library edits: leads
    assert login(org.admin).get(reverse("content:case_new", args=[99999])).status_code == 404
