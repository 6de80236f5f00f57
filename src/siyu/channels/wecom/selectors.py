"""Reads of the WeCom connector."""

from django.db.models import QuerySet

from siyu.channels.wecom.models import Callback, Connection, SyncRun


def connection_get() -> Connection | None:
    """The organisation's connection, or None before an admin has set one up."""
    return Connection.objects.order_by("pk").first()


def secret_hint(value: str) -> str:
    """What the console shows of a stored secret: its last four characters, never more."""
    return f"••••{value[-4:]}" if len(value) > 8 else ("••••" if value else "")


def callback_recent(*, limit: int = 20) -> QuerySet[Callback]:
    return Callback.objects.order_by("-pk").defer("xml")[:limit]


def callbacks_pending_ids(*, older_than, max_attempts: int, limit: int = 200) -> list[int]:
    """Stored callbacks that failed (or whose worker died) and may be tried again."""
    return list(
        Callback.objects.filter(
            processed_at__isnull=True, received_at__lt=older_than, attempts__lt=max_attempts
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def sync_run_latest() -> SyncRun | None:
    return SyncRun.objects.order_by("-pk").first()
