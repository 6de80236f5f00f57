"""The restricted formatter: known variables only, sensible fallbacks, nothing evaluated."""

import pytest

from siyu.content.formatting import render_script, unknown_variables
from siyu.customers.models import Customer
from siyu.org.models import Staff, Store


def people(name="王小美", city="杭州", nickname="小思"):
    store = Store(name="静安店")
    customer = Customer(name=name, city=city, store=store)
    staff = Staff(name="李娜", nickname=nickname, store=store)
    return customer, staff


def test_known_variables_are_filled_in():
    customer, staff = people()
    body = (
        "{customer.name}您好，我是{store.name}的{staff.nickname}（{staff.name}），{customer.city}见"
    )
    assert render_script(body, customer=customer, staff=staff) == (
        "王小美您好，我是静安店的小思（李娜），杭州见"
    )


def test_material_variables_use_the_link_given_else_the_materials_own():
    customer, staff = people()

    class Material:
        title, url = "春季新品", "https://shop.example/p/1"

    body = "{material.title} {material.link}"
    assert render_script(body, customer=customer, staff=staff, material=Material()) == (
        "春季新品 https://shop.example/p/1"
    )
    linked = render_script(
        body, customer=customer, staff=staff, material=Material(), material_link="https://s/x"
    )
    assert linked == "春季新品 https://s/x"


def test_empty_values_fall_back():
    customer, staff = people(name="  ", city="", nickname="")
    body = "{customer.name}好，{staff.nickname}为您服务{customer.city}{material.link}"
    assert render_script(body, customer=customer, staff=None) == "您好，为您服务"
    assert render_script(body, customer=customer, staff=staff) == "您好，李娜为您服务"


@pytest.mark.parametrize(
    "body",
    [
        "{customer.__class__}",
        "{customer.__class__.__init__.__globals__}",
        "{0}",
        "{}",
        "{{ customer.name }}",
        "{% load static %}",
        "%s %(name)s",
        "{customer.phone}",
        "{customer.name!r}",
        "{customer.name:>10}",
    ],
)
def test_injection_attempts_stay_as_typed(body):
    customer, staff = people()
    assert render_script(body, customer=customer, staff=staff) == body


def test_unknown_variables_are_named_once_in_order():
    body = "{customer.name}{0}{customer.__class__}{0}{{ x }}{staff.phone}"
    assert unknown_variables(body) == ["0", "customer.__class__", "staff.phone"]
    assert unknown_variables("{customer.name} {material.link}") == []
