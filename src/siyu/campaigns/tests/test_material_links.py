"""A campaign that shares a material sends each customer their own tracked link, so every
open is known: who read it, from whose message (the radar)."""

import re

import pytest

from siyu.campaigns.models import Delivery
from siyu.campaigns.services import campaign_plan_due, deliveries_send_due
from siyu.campaigns.tests.conftest import NOW
from siyu.content.models import Material, TrackedLink
from siyu.content.tests.factories import MaterialFactory

pytestmark = pytest.mark.django_db
LINK = re.compile(r"https://m\.example\.com/m/([A-Za-z0-9_-]+)")


def test_each_customer_gets_their_own_tracked_link_reused_by_later_sends(
    make_campaign, people, sms_gateway, settings, org
):
    settings.SIYU_PUBLIC_URL = "https://m.example.com/"
    article = MaterialFactory(kind=Material.Kind.ARTICLE, title="春季护肤指南", url="")
    variants = [
        {"name": "A", "body": "{customer.name}，新品指南：{material.link}", "material": article}
    ]
    first = make_campaign("sms", variants=variants)
    campaign_plan_due(now=NOW)
    deliveries_send_due(now=NOW)

    texts = {d["to"]: d["text"] for d in sms_gateway.received.values()}
    codes = {phone: LINK.search(text).group(1) for phone, text in texts.items()}
    assert len(set(codes.values())) == 3  # one link per customer
    link = TrackedLink.objects.get(code=codes[people[0].phone])
    assert (link.material, link.staff, link.customer) == (article, org.staff_a, people[0])
    row = Delivery.objects.get(campaign=first, customer=people[0])
    assert row.rendered_text == f"李0，新品指南：https://m.example.com/m/{link.code}"

    # A later campaign with the same material reuses each customer's link: opens add up.
    sms_gateway.received.clear()
    make_campaign("sms", variants=variants, marketing=False)
    campaign_plan_due(now=NOW)
    deliveries_send_due(now=NOW)
    again = {d["to"]: LINK.search(d["text"]).group(1) for d in sms_gateway.received.values()}
    assert again == codes
    assert TrackedLink.objects.count() == 3


def test_a_text_without_the_link_creates_none_and_a_draft_material_falls_back_to_its_url(
    make_campaign, people, sms_gateway
):
    product = MaterialFactory(url="https://shop.example.com/p/1")
    make_campaign("sms", variants=[{"name": "A", "body": "{material.title}", "material": product}])
    draft = MaterialFactory(status=Material.Status.DRAFT, url="https://shop.example.com/p/2")
    make_campaign(
        "sms",
        variants=[{"name": "A", "body": "看看 {material.link}", "material": draft}],
        marketing=False,
    )
    campaign_plan_due(now=NOW)
    deliveries_send_due(now=NOW)

    texts = [d["text"] for d in sms_gateway.received.values()]
    assert sorted(texts).count(product.title) == 3
    assert texts.count("看看 https://shop.example.com/p/2") == 3
    assert not TrackedLink.objects.exists()
