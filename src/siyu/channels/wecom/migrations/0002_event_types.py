"""Registers the event types the WeCom connector writes, with labels and properties (fixed
rows, no business logic), so the timeline and the segment builder name them."""

from django.db import migrations

TYPES = {
    "wecom_contact_added": (
        "添加企业微信",
        "客户添加了员工的企业微信（或员工免验证添加了客户）",
        {
            "staff_id": "员工 ID",
            "staff_userid": "员工企业微信 UserID",
            "state": "渠道活码 state",
            "channel_code_id": "渠道活码 ID",
            "half": "免验证添加、员工尚未确认",
        },
    ),
    "wecom_transfer_failed": (
        "客户继承失败",
        "企业微信客户转接失败",
        {"staff_userid": "接替员工 UserID", "reason": "失败原因"},
    ),
    "group_joined": (
        "加入客户群",
        "客户加入了企业微信客户群",
        {"group_id": "客户群 ID", "chat_id": "企业微信群 ID", "group_name": "群名", "join_scene": "入群方式"},
    ),
    "group_left": (
        "退出客户群",
        "客户退出或被移出企业微信客户群",
        {"group_id": "客户群 ID", "chat_id": "企业微信群 ID", "group_name": "群名"},
    ),
}


def insert(apps, schema_editor):
    EventType = apps.get_model("events", "EventType")
    for name, (label, description, properties) in TYPES.items():
        EventType.objects.update_or_create(
            name=name,
            defaults={"label": label, "description": description, "properties": properties},
        )


def remove(apps, schema_editor):
    # Keep the rows when events of the types exist; the registry shows them either way.
    pass


class Migration(migrations.Migration):
    dependencies = [
        ("wecom", "0001_initial"),
        ("events", "0003_event_drop_single_column_indexes"),
    ]
    operations = [migrations.RunPython(insert, remove)]
