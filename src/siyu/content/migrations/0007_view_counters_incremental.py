from django.db import migrations, models
from django.db.models import Count, F, OuterRef, Subquery, Sum
from django.db.models.functions import Coalesce

DONE, OPEN = 0, 2


def count_what_was_followed_up(apps, schema_editor):
    """The follow-up now adds to the links' counters instead of recounting every view. Start
    them from what it has seen: opens followed up, and the seconds of views it is done with; a
    pending open and a pending longer read are added by their follow-up."""
    MaterialView = apps.get_model("content", "MaterialView")
    TrackedLink = apps.get_model("content", "TrackedLink")
    MaterialView.objects.filter(follow_up=DONE).update(seconds_counted=F("seconds"))
    counted = MaterialView.objects.filter(link=OuterRef("pk")).exclude(follow_up=OPEN).order_by()
    per_link = counted.values("link")
    TrackedLink.objects.update(
        view_count=Coalesce(Subquery(per_link.annotate(n=Count("*")).values("n")), 0),
        seconds_read=Coalesce(
            Subquery(per_link.annotate(s=Sum("seconds_counted")).values("s")), 0
        ),
        last_viewed_at=Subquery(counted.order_by("-opened_at").values("opened_at")[:1]),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("content", "0006_view_follow_up"),
    ]

    operations = [
        migrations.AddField(
            model_name="materialview",
            name="seconds_counted",
            field=models.PositiveIntegerField(db_default=0),
        ),
        migrations.RunPython(count_what_was_followed_up, migrations.RunPython.noop),
    ]
