from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ContentConfig(AppConfig):
    name = "siyu.content"
    verbose_name = _("Content")

    def ready(self) -> None:
        from siyu.content.models import MaterialView
        from siyu.customers.merge import register_customer_owned

        # Views move to the survivor of a merge. Tracked links stay with the tombstone: their
        # codes are out in chats, and a view through one is credited to the survivor.
        register_customer_owned(MaterialView)
