"""The six built-in script categories as fixed rows (no business logic): inserted once here so
no page has to write on GET, and ordered first. Their labels are translated in the console
(models.BUILTIN_CATEGORIES); `name` is the Chinese label for the Django admin and exports."""

from django.db import migrations

BUILTIN = [
    ("greeting", "打招呼"),
    ("sharing", "分享"),
    ("daily", "日常互动"),
    ("qa", "答疑"),
    ("activation", "激活"),
    ("after_sales", "售后"),
]


def insert(apps, schema_editor):
    ScriptCategory = apps.get_model("content", "ScriptCategory")
    for order, (key, name) in enumerate(BUILTIN):
        ScriptCategory.objects.get_or_create(builtin=key, defaults={"name": name, "order": order})


def remove(apps, schema_editor):
    apps.get_model("content", "ScriptCategory").objects.exclude(builtin="").delete()


class Migration(migrations.Migration):
    dependencies = [("content", "0001_library")]
    operations = [migrations.RunPython(insert, remove)]
