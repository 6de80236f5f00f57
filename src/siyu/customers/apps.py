from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "siyu.customers"
    label = "customers"
    verbose_name = "Customers"

    def ready(self) -> None:
        from siyu.customers import merge
        from siyu.customers.models import Identity, Relationship

        merge.register_customer_owned(Identity)
        merge.register_customer_owned(Relationship, on_conflict=merge.merge_relationships)
