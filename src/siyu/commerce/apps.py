from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "siyu.commerce"
    label = "commerce"
    verbose_name = "Commerce"

    def ready(self) -> None:
        from siyu.commerce.models import Order
        from siyu.customers.merge import register_customer_owned

        register_customer_owned(Order)
