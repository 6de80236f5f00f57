from django.apps import AppConfig


class TagsConfig(AppConfig):
    name = "siyu.tags"
    label = "tags"
    verbose_name = "Tags"

    def ready(self) -> None:
        from siyu.customers.merge import register_customer_owned
        from siyu.tags.models import CustomerTag, TagChange
        from siyu.tags.services import merge_customer_tags

        register_customer_owned(CustomerTag, on_conflict=merge_customer_tags)
        register_customer_owned(TagChange)
