"""Registers the `material_viewed` event type with its label and properties (a fixed row, no
business logic), so the timeline and the segment builder name it from the first open."""

from django.db import migrations

PROPERTIES = {
    "material_id": "素材 ID",
    "material_title": "素材标题",
    "link_code": "追踪链接短码",
    "staff_id": "分享员工 ID",
}


def insert(apps, schema_editor):
    EventType = apps.get_model("events", "EventType")
    EventType.objects.update_or_create(
        name="material_viewed",
        defaults={
            "label": "打开素材",
            "description": "客户打开了员工分享的追踪素材链接",
            "properties": PROPERTIES,
        },
    )


def remove(apps, schema_editor):
    # Keep the row when events of the type exist; the registry shows them either way.
    pass


class Migration(migrations.Migration):
    dependencies = [
        ("content", "0003_tracked_links"),
        ("events", "0003_event_drop_single_column_indexes"),
    ]
    operations = [migrations.RunPython(insert, remove)]
