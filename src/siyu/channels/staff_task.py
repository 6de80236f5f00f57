"""Staff tasks: a person sends the message in WeCom, in a 1:1 chat or as a moments post.

"Sending" creates the task holding the text; the delivery counts as sent when the task exists
(done_at later says when the person acted). A chat task is the customer owner's message to that
customer; a moments post is one task per staff member for all their customers in the step's
audience, whose deliveries all name it.
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


@register
class StaffMomentsChannel(ChannelAdapter):
    name = "staff_moments"
    address_kind = "owner"
    quiet_hours = False
    capped = False  # the post shows in the customers' feeds; nobody is messaged
    per_staff = True

    def send(self, messages: Sequence[Message]) -> list[Result]:
        from siyu.campaigns.services import staff_moments_create

        def key(m: Message) -> tuple:
            return (m.staff_id, m.extra["step_id"], m.extra["occurrence"])

        # The text has no customer variables (campaign scheduling refuses them), so any
        # message of the staff member's stands for their post.
        ids = staff_moments_create(
            items={key(m): m.body for m in messages if m.staff_id is not None}
        )
        return [
            Result.sent(f"task-{ids[key(m)]}")
            if key(m) in ids
            else Result.failed("no staff member to post", retryable=False)
            for m in messages
        ]
