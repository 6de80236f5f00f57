"""The lifetime value model page: who may open it, what it shows, its query count."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from siyu.customers.tests.factories import CustomerFactory
from siyu.segments.models import ClvFit, CustomerClv
from siyu.segments.services import clv_recompute
from siyu.segments.tests.helpers import AS_OF
from siyu.segments.tests.test_clv_recompute import build_buyers

URL = "/segments/layers/clv/"


def predict(customer, *, p_alive: float, value: str) -> None:
    CustomerClv.objects.create(
        customer=customer,
        p_alive=p_alive,
        purchases_90=0.3,
        purchases_365=1.2,
        value_365=Decimal(value),
    )


def fitted() -> ClvFit:
    return ClvFit.objects.create(
        as_of=AS_OF,
        params={
            "bgnbd": {"r": 0.5, "alpha": 50.0, "a": 0.6, "b": 2.4},
            "gamma_gamma": {
                "p": 6.0,
                "q": 4.0,
                "v": 30.0,
                "log_likelihood": -10.0,
                "limits": [],
            },
            "repeat_buyers": 3,
            "time_unit": "day",
        },
        log_likelihood=-1234.5,
        customers=5,
        triples=4,
        seconds=0.8,
        holdout={
            "holdout_days": 90,
            "customers": 5,
            "rows": [
                {
                    "frequency": 0,
                    "open_ended": False,
                    "customers": 3,
                    "predicted": 0.2,
                    "actual": 0.33,
                },
                {
                    "frequency": 7,
                    "open_ended": True,
                    "customers": 2,
                    "predicted": 1.9,
                    "actual": 2.0,
                },
            ],
        },
    )


def test_the_url_is_the_layers_clv_page():
    assert reverse("segments:clv") == URL


@pytest.mark.parametrize("who", ["admin", "manager_a"])
def test_admins_and_managers_see_parameters_their_meaning_and_the_holdout_check(org, login, who):
    fitted()
    response = login(getattr(org, who)).get(URL)
    assert response.status_code == 200
    content = response.content.decode()
    for text in (
        "r = 0.5000, α = 50.0000",
        "a = 0.6000, b = 2.4000",
        "p = 6.0000, q = 4.0000, γ = 30.0000",
        "-1234.5",
        "3.65",  # purchase days a year: 365 r / α
        "0.200",  # mean dropout a / (a + b)
        "¥60.00",  # mean value p γ / (q − 1)
        "7+",
        "0.330",
        'data-clv-chart="holdout"',
    ):
        assert text in content, text


def test_staff_get_404_and_the_anonymous_go_to_login(org, login, client, db):
    assert client.get(URL).status_code == 302
    assert login(org.staff_a).get(URL).status_code == 404


def test_the_histograms_count_only_the_viewers_customers(org, login):
    fitted()
    predict(CustomerFactory(store=org.store_a), p_alive=0.95, value="80")
    predict(CustomerFactory(store=org.store_a), p_alive=0.42, value="12000")
    predict(CustomerFactory(store=org.store_b), p_alive=0.05, value="30")

    page = login(org.manager_a).get(URL).context["page"]

    assert page.scored == 2
    assert dict(page.value_buckets) == {
        **{label: 0 for label, _ in page.value_buckets},
        "¥50–100": 1,
        "¥10,000+": 1,
    }
    assert [n for _, n in page.alive_buckets] == [0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    assert page.total_value == 12080
    assert login(org.admin).get(URL).context["page"].scored == 3


def test_a_failed_fit_is_reported_above_the_last_good_one(org, login):
    fitted()
    ClvFit.objects.create(as_of=AS_OF, params={"error": "BG/NBD: no repeat buyer"})
    content = login(org.admin).get(URL).content.decode()
    assert "BG/NBD: no repeat buyer" in content
    assert "r = 0.5000" in content


def test_an_empty_base_says_so(org, login):
    response = login(org.admin).get(URL)
    assert response.status_code == 200
    assert "尚未计算" in response.content.decode()


def test_query_count_is_pinned_and_does_not_grow(org, login):
    fitted()
    client = login(org.manager_a)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(URL).status_code == 200
        return len(captured)

    # session, user, staff; latest fit, the predictions' aggregate; the last recomputations
    assert queries() == 3 + 2 + 1
    for i in range(30):
        predict(CustomerFactory(store=org.store_a), p_alive=i / 30, value=str(i * 100))
    assert queries() == 3 + 2 + 1


def test_admin_recomputes_now(org, login, django_capture_on_commit_callbacks):
    build_buyers(150)
    client = login(org.admin)
    assert reverse("segments:layer_recompute", args=["clv"]) in client.get(URL).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("segments:layer_recompute", args=["clv"]))

    assert response.status_code == 302 and response["Location"] == URL
    fit = ClvFit.objects.get()
    assert fit.failure == "" and fit.customers == 150
    assert CustomerClv.objects.count() == 150
    assert client.get(URL).context["page"].fit == fit


def test_the_page_draws_a_real_fit(org, login):
    build_buyers(150)
    clv_recompute(as_of=AS_OF, holdout_days=60)
    content = login(org.admin).get(URL).content.decode()
    assert "BG/NBD" in content and "Gamma-Gamma" in content
    assert 'data-clv-chart="value"' in content
