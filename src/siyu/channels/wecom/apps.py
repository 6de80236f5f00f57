from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WecomConfig(AppConfig):
    name = "siyu.channels.wecom"
    label = "wecom"
    verbose_name = _("WeCom")

    def ready(self) -> None:
        from siyu.channels.wecom import mass  # noqa: F401  registers the "wecom" channel
        from siyu.channels.wecom.models import GroupMember, TransferItem
        from siyu.customers import merge

        # Group members and transfer items point at a customer; a merge moves them along.
        merge.register_customer_owned(GroupMember)
        merge.register_customer_owned(TransferItem)
