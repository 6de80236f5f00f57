"""Reads of the WeCom connector."""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q, QuerySet

from siyu.channels.wecom.models import (
    Callback,
    ChannelCode,
    Connection,
    CorpTagGroup,
    CorpTagOp,
    SyncRun,
    TagMark,
    Transfer,
    TransferItem,
)
from siyu.customers.models import Relationship
from siyu.tags.models import TagGroup


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


def sync_run_history(*, limit: int = 10) -> QuerySet[SyncRun]:
    return SyncRun.objects.order_by("-pk").defer("userids")[:limit]


@dataclass(frozen=True)
class CodeRow:
    code: ChannelCode
    adds: int
    removed: int

    @property
    def cac(self) -> Decimal | None:
        """Spend per customer added (获客成本); None before the first add."""
        return (self.code.spend / self.adds).quantize(Decimal("0.01")) if self.adds else None


def channel_code_rows() -> list[CodeRow]:
    """Every code with its adds and removals (relationships carrying its state): two queries,
    the codes and one grouped count, whatever their number."""
    codes = list(ChannelCode.objects.select_related("channel").annotate(staff_count=Count("staff")))
    counts = {
        state: (adds, removed)
        for state, adds, removed in Relationship.objects.filter(state__in=[c.state for c in codes])
        .values("state")
        .annotate(
            adds=Count("*"),
            removed=Count("pk", filter=Q(status=Relationship.Status.REMOVED)),
        )
        .values_list("state", "adds", "removed")
        .order_by()
    }
    return [CodeRow(c, *counts.get(c.state, (0, 0))) for c in codes]


def channel_code_get(pk: int) -> ChannelCode:
    return ChannelCode.objects.select_related("channel", "welcome_script").get(pk=pk)


def transfer_list(*, limit: int = 50) -> QuerySet[Transfer]:
    """Recent transfers with their items counted by status: one query."""
    counts = {
        status: Count("items", filter=Q(items__status=status))
        for status in TransferItem.Status.values
    }
    return (
        Transfer.objects.select_related("handover", "takeover")
        .annotate(total=Count("items"), **counts)
        .order_by("-pk")[:limit]
    )


@dataclass(frozen=True)
class CorpTagPush:
    pending: int
    failed: list[CorpTagOp]
    marks: int
    unmirrored: list[TagGroup]


def corp_tag_push_status() -> CorpTagPush:
    """What the settings page shows of the push of tags to WeCom: four queries."""
    ops = CorpTagOp.objects.exclude(status=CorpTagOp.Status.DONE)
    return CorpTagPush(
        pending=ops.filter(status=CorpTagOp.Status.PENDING).count(),
        failed=list(ops.filter(status=CorpTagOp.Status.FAILED).order_by("-pk")[:5]),
        marks=TagMark.objects.count(),
        unmirrored=list(
            TagGroup.objects.exclude(pk__in=CorpTagGroup.objects.values("tag_group_id")).order_by(
                "order", "name"
            )
        ),
    )
