"""The layer pages: RFM grid, lifecycle funnel, super users; scope, links, bounded queries."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from siyu.customers.models import Customer
from siyu.customers.tests.factories import CustomerFactory
from siyu.segments.models import LayerRecompute, StageChange
from siyu.segments.tests.helpers import order

RFM = reverse("segments:rfm")
LIFECYCLE = reverse("segments:lifecycle")
SUPER = reverse("segments:super_users")
LIST = reverse("customers:list")


def scored(owner, r, f, monetary, group="", *, stage="lead", super_user=False) -> Customer:
    customer = CustomerFactory(owner=owner, stage=stage)
    Customer.objects.filter(pk=customer.pk).update(
        rfm_r=r,
        rfm_f=f,
        rfm_m=r and 3,
        rfm_monetary=Decimal(monetary),
        rfm_group=group,
        is_super_user=super_user,
    )
    return customer


@pytest.fixture
def base(org):
    """Store A: three buyers and one who never paid; store B: one big buyer."""
    return {
        "a1": scored(org.staff_a, 5, 3, "100", "potential_loyalists", stage="first_purchase"),
        "a2": scored(org.staff_a2, 5, 3, "300", "potential_loyalists", stage="repeat"),
        "a3": scored(org.staff_a, 1, 1, "50", "lost", stage="lost"),
        "a4": scored(org.staff_a, None, None, "0", stage="contact"),
        "b1": scored(org.staff_b, 5, 3, "1000", "potential_loyalists", super_user=True),
    }


def cell(grid, r, f):
    return next(c for c in grid.cells if (c.r, c.f) == (r, f))


def listed(client, url: str) -> set[int]:
    return {c.pk for c in client.get(url).context["page"].items}


# The RFM grid


def test_grid_counts_and_averages_each_cell_for_an_admin(org, base, login):
    response = login(org.admin).get(RFM)
    assert response.status_code == 200
    grid = response.context["grid"]
    assert len(grid.cells) == 25
    assert (cell(grid, 5, 3).customers, cell(grid, 5, 3).average) == (3, Decimal("466.67"))
    assert (cell(grid, 1, 1).customers, cell(grid, 1, 1).average) == (1, Decimal("50.00"))
    assert sum(c.customers for c in grid.cells) == 4
    assert (grid.customers, grid.scored) == (5, 4)


def test_grid_groups_have_count_share_average_and_total(org, base, login):
    grid = login(org.admin).get(RFM).context["grid"]
    rows = {g.group: (g.customers, round(g.percent, 1), g.average, g.total) for g in grid.groups}
    assert rows == {
        "potential_loyalists": (3, 60.0, Decimal("466.67"), Decimal("1400.00")),
        "lost": (1, 20.0, Decimal("50.00"), Decimal("50.00")),
        "": (1, 20.0, Decimal("0.00"), Decimal("0.00")),
    }
    assert [g.group for g in grid.groups][-1] == ""  # "no paid orders" comes last


def test_a_manager_sees_only_their_stores_customers(org, base, login):
    grid = login(org.manager_a).get(RFM).context["grid"]
    assert (cell(grid, 5, 3).customers, cell(grid, 5, 3).average) == (2, Decimal("200.00"))
    assert (grid.customers, grid.scored) == (4, 3)
    assert {g.group: g.customers for g in grid.groups} == {
        "potential_loyalists": 2,
        "lost": 1,
        "": 1,
    }


def test_cells_and_groups_link_to_their_members(org, base, login):
    client = login(org.manager_a)
    content = client.get(RFM).content.decode()
    cell_link = f"{LIST}?rfm_r=5&amp;rfm_f=3"
    group_link = f"{LIST}?rfm_group=lost"
    assert cell_link in content and group_link in content
    # the links open the customer list narrowed to exactly those members, in scope
    assert listed(client, cell_link.replace("&amp;", "&")) == {base["a1"].pk, base["a2"].pk}
    assert listed(client, group_link) == {base["a3"].pk}


@pytest.mark.parametrize("url", [RFM, LIFECYCLE, SUPER])
def test_layer_pages_are_404_for_staff(org, base, login, url):
    assert login(org.staff_a).get(url).status_code == 404


@pytest.mark.parametrize("url", [RFM, LIFECYCLE, SUPER])
def test_layer_pages_send_the_anonymous_to_login(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("console:login"))


@pytest.mark.parametrize("url", [RFM, LIFECYCLE, SUPER])
def test_layer_pages_work_on_an_empty_base(org, login, url):
    response = login(org.admin).get(url)
    assert response.status_code == 200


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    ("url", "expected"),
    # session, user, staff; the page's own queries; the last recomputations
    [(RFM, 3 + 2 + 1), (LIFECYCLE, 3 + 2 + 1), (SUPER, 3 + 2 + 1)],
)
@pytest.mark.parametrize("who", ["admin", "manager_a"])
def test_query_count_is_pinned_and_does_not_grow(org, base, login, url, expected, who):
    client = login(getattr(org, who))
    assert _queries(client, url) == expected
    # when the base grows
    for i in range(20):
        scored(org.staff_a, 1 + i % 5, 1 + i % 4, str(10 * i), "hibernating", stage="lost")
        StageChange.objects.create(
            customer=base["a1"], from_stage="lead", to_stage="lost", at=timezone.now()
        )
    assert _queries(client, url) == expected


# The lifecycle funnel


def test_funnel_counts_each_stage_in_scope(org, base, login):
    funnel = login(org.manager_a).get(LIFECYCLE).context["funnel"]
    assert [(s.stage, s.customers) for s in funnel.stages] == [
        ("lead", 0),
        ("contact", 1),
        ("engaged", 0),
        ("first_purchase", 1),
        ("repeat", 1),
        ("member", 0),
    ]
    assert [(s.stage, s.customers) for s in funnel.fallen] == [("at_risk", 0), ("lost", 1)]
    admin = login(org.admin).get(LIFECYCLE).context["funnel"]
    assert admin.stages[0].customers == 1  # store B's buyer is still a lead


def test_funnel_stages_link_to_their_members(org, base, login):
    client = login(org.manager_a)
    content = client.get(LIFECYCLE).content.decode()
    assert f"{LIST}?stage=repeat" in content and f"{LIST}?stage=lost" in content
    assert listed(client, f"{LIST}?stage=repeat") == {base["a2"].pk}


def test_transitions_of_the_last_30_days_are_counted_in_scope(org, base, login):
    now = timezone.now()
    for customer in (base["a1"], base["a2"], base["b1"]):
        StageChange.objects.create(
            customer=customer, from_stage="lead", to_stage="first_purchase", at=now
        )
    StageChange.objects.create(
        customer=base["a2"], from_stage="first_purchase", to_stage="repeat", at=now
    )
    StageChange.objects.create(  # too old to count
        customer=base["a3"], from_stage="repeat", to_stage="lost", at=now - timedelta(days=31)
    )
    admin = login(org.admin).get(LIFECYCLE)
    rows = [(t.to_stage, t.customers) for t in admin.context["funnel"].transitions]
    assert rows == [("first_purchase", 3), ("repeat", 1)]
    manager = login(org.manager_a).get(LIFECYCLE).context["funnel"]
    assert [(t.to_stage, t.customers) for t in manager.transitions] == [
        ("first_purchase", 2),
        ("repeat", 1),
    ]
    assert "首购" in admin.content.decode()  # labels are translated


# Super users


def test_super_users_page_shows_the_pareto_threshold_over_the_viewers_customers(org, base, login):
    # Admin: 1000 + 300 + 100 + 50 = 1450; 80% is reached by the two biggest spenders.
    facts = login(org.admin).get(SUPER).context["facts"]
    assert (facts.pareto.customers, facts.pareto.buyers) == (2, 4)
    assert facts.pareto.threshold == Decimal("300")
    assert facts.pareto.curve[0] == (0.0, 0.0) and facts.pareto.curve[-1] == (1.0, 1.0)
    assert facts.flagged == 1
    # Store A: 300 + 100 + 50 = 450; 80% needs 300 and 100.
    response = login(org.manager_a).get(SUPER)
    facts = response.context["facts"]
    assert (facts.pareto.customers, facts.pareto.buyers) == (2, 3)
    assert facts.pareto.threshold == Decimal("100")
    assert facts.flagged == 0
    assert f"{LIST}?is_super_user=1" in response.content.decode()


def test_super_user_link_lists_the_flagged_customers(org, base, login):
    assert listed(login(org.admin), f"{LIST}?is_super_user=1") == {base["b1"].pk}


# Recompute now


@pytest.mark.parametrize(("kind", "page"), [("rfm", RFM), ("stages", LIFECYCLE)])
def test_admin_recomputes_now_and_sees_when(
    org, login, kind, page, django_capture_on_commit_callbacks
):
    buyer = CustomerFactory(owner=org.staff_a)
    order(buyer, days=1)
    client = login(org.admin)
    assert client.get(page).context["recomputed"][kind] is None
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("segments:layer_recompute", args=[kind]))
    assert response.status_code == 302 and response["Location"] == page
    assert LayerRecompute.objects.filter(kind=kind).count() == 1
    buyer.refresh_from_db()
    if kind == "rfm":
        assert buyer.rfm_r is not None
    else:
        assert buyer.stage == "first_purchase"
    assert client.get(page).context["recomputed"][kind] is not None


def test_only_admins_may_recompute(org, login):
    url = reverse("segments:layer_recompute", args=["rfm"])
    assert login(org.manager_a).post(url).status_code == 404
    assert url not in login(org.manager_a).get(RFM).content.decode()
    client = login(org.admin)
    assert client.get(url).status_code == 405
    assert client.post(reverse("segments:layer_recompute", args=["nonsense"])).status_code == 404
    assert not LayerRecompute.objects.exists()


def test_the_layers_area_is_current_on_every_layer_page(org, login):
    client = login(org.admin)
    for url in (RFM, LIFECYCLE, SUPER):
        current = [link.url for link in client.get(url).context["nav"] if link.current]
        assert current == [RFM]
