"""Two upserts of the same (channel, external id) at once: both succeed, one order exists."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction

from siyu.commerce.models import Order
from siyu.commerce.services import order_upsert
from siyu.customers.identifiers import Identifier
from siyu.customers.tests.factories import ChannelFactory

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite runs one writing transaction at a time"
)


def _upsert(phone: str, amount: str):
    return order_upsert(
        channel_code="tmall",
        external_id="T-1",
        identifiers=[Identifier("phone", phone)],
        values={"status": "paid", "amount": Decimal(amount)},
        items=None,
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("second_phone", ["+8613900000001", "+8613900000002"])
def test_a_second_upsert_waiting_on_the_first_insert_updates_instead_of_failing(second_phone):
    ChannelFactory(code="tmall")
    inserted, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def first():
        try:
            with transaction.atomic():
                results["first"] = _upsert("+8613900000001", "10")
                inserted.set()
                release.wait(10)
        except Exception as exc:  # reported below, not lost in the thread
            results["first"] = exc
        finally:
            connections.close_all()

    def second():
        try:
            results["second"] = _upsert(second_phone, "12")
        except Exception as exc:
            results["second"] = exc
        finally:
            connections.close_all()

    one = threading.Thread(target=first)
    one.start()
    assert inserted.wait(10)
    two = threading.Thread(target=second)
    two.start()
    time.sleep(0.5)  # the second insert now waits on the first's uncommitted row
    release.set()
    one.join(10)
    two.join(10)

    assert not isinstance(results["first"], Exception), results["first"]
    assert not isinstance(results["second"], Exception), results["second"]
    assert results["first"].created and not results["second"].created
    order = Order.objects.get()
    assert order.amount == Decimal("12")
