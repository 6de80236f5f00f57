"""Drop three single-column indexes Django made for foreign keys that other indexes already
cover: an order's channel (order_unique_ref begins with it), an order's customer
(order_customer_paid_time_idx begins with it) and an order line's order (orderitem_order_idx is
the same index). Every imported order and line maintained them for nothing. Plain DROP INDEX
instead of the AlterFields (SQLite would rebuild the tables).
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "commerce_order_channel_id_39809b28": ("commerce_order", "channel_id"),
    "commerce_order_customer_id_9af2ddae": ("commerce_order", "customer_id"),
    "commerce_orderitem_order_id_c812b8bd": ("commerce_orderitem", "order_id"),
}


class Migration(migrations.Migration):
    dependencies = [
        ("commerce", "0002_order_customer_paid_time_index"),
        ("customers", "0005_drop_identity_channel_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="order",
                    name="channel",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="orders",
                        to="customers.channel",
                    ),
                ),
                migrations.AlterField(
                    model_name="order",
                    name="customer",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="orders",
                        to="customers.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="orderitem",
                    name="order",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="items",
                        to="commerce.order",
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
