"""Drop the single-column indexes Django made for five foreign keys that composite or
partial indexes already cover: every insert of a customer or identity maintained them for
nothing. Plain DROP INDEX instead of the AlterFields (SQLite would rebuild the table five times).
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "customers_customer_first_channel_id_bce0e1e3": ("customers_customer", "first_channel_id"),
    "customers_customer_merged_into_id_2994ddb6": ("customers_customer", "merged_into_id"),
    "customers_customer_owner_id_fbb2798e": ("customers_customer", "owner_id"),
    "customers_customer_store_id_3de17114": ("customers_customer", "store_id"),
    "customers_identity_customer_id_b1e21f37": ("customers_identity", "customer_id"),
}


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0003_customer_rfm_last_paid_at"),
        ("org", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="customer",
                    name="first_channel",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="customers.channel",
                    ),
                ),
                migrations.AlterField(
                    model_name="customer",
                    name="merged_into",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="absorbed",
                        to="customers.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="customer",
                    name="owner",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="owned_customers",
                        to="org.staff",
                    ),
                ),
                migrations.AlterField(
                    model_name="customer",
                    name="store",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="customers",
                        to="org.store",
                    ),
                ),
                migrations.AlterField(
                    model_name="identity",
                    name="customer",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="identities",
                        to="customers.customer",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" ("{column}")',
                )
                for name, (table, column) in INDEXES.items()
            ],
        ),
    ]
