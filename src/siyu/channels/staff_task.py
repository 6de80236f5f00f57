"""Staff tasks: a person sends the message in WeCom (1:1 chat or a moments post).

"Sending" creates the customer owner's task holding the personalised text; the delivery counts
as sent when the task exists (done_at later says when the person acted).
"""

from collections.abc import Sequence

from siyu.channels.base import ChannelAdapter, Message, Result, register


@register
class StaffTaskChannel(ChannelAdapter):
    name = "staff_task"
    address_kind = "owner"
    quiet_hours = False  # the task waits in the list; the person chooses the moment

    def send(self, messages: Sequence[Message]) -> list[Result]:
        # Imported late: campaigns imports the channel registry.
        from siyu.campaigns.services import staff_tasks_create

        ids = staff_tasks_create(
            items=[(m.delivery_id, m.staff_id, m.customer_id, m.body) for m in messages]
        )
        return [Result.sent(f"task-{ids[m.delivery_id]}") for m in messages]
