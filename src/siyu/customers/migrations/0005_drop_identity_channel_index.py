"""Drop the index Django made for an identity's channel: only deleting a channel looks
identities up by it, and every identity an import creates maintained it. Plain DROP INDEX
instead of the AlterField (SQLite would rebuild the table).
"""

import django.db.models.deletion
from django.db import migrations, models

NAME = "customers_identity_channel_id_449caadb"


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0004_drop_indexes_covered_by_composites"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="identity",
                    name="channel",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="customers.channel",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{NAME}"',
                    f'CREATE INDEX IF NOT EXISTS "{NAME}" ON "customers_identity" ("channel_id")',
                ),
            ],
        ),
    ]
