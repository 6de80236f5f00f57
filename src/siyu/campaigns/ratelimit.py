"""Per-channel send rates: a token bucket per channel in the database, shared by all workers.

The bucket holds at most one second of tokens, refilled continuously at the channel's rate
(SIYU_CHANNEL_RATE_<CHANNEL>, messages per second; 0 = unlimited). A sender takes tokens for a
whole batch in one short transaction and gives back what it could not use.
"""

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F

from siyu.campaigns.models import ChannelBucket


def channel_rate(channel: str) -> int:
    return int(getattr(settings, f"SIYU_CHANNEL_RATE_{channel.upper()}", 0) or 0)


@transaction.atomic
def tokens_take(*, channel: str, want: int, now: datetime) -> int:
    """Take up to `want` tokens; returns how many were granted (maybe 0)."""
    rate = channel_rate(channel)
    if rate <= 0 or want <= 0:
        return max(want, 0)
    ChannelBucket.objects.bulk_create(
        [ChannelBucket(channel=channel, tokens=rate, refilled_at=now)], ignore_conflicts=True
    )
    bucket = ChannelBucket.objects.select_for_update().get(channel=channel)
    elapsed = max((now - bucket.refilled_at).total_seconds(), 0.0)
    tokens = min(float(rate), bucket.tokens + elapsed * rate)
    granted = min(want, int(tokens))
    bucket.tokens = tokens - granted
    bucket.refilled_at = max(now, bucket.refilled_at)
    bucket.save(update_fields=["tokens", "refilled_at"])
    return granted


def tokens_return(*, channel: str, count: int) -> None:
    """Give back tokens taken but not used (fewer deliveries were due than granted)."""
    if count > 0 and channel_rate(channel) > 0:
        ChannelBucket.objects.filter(channel=channel).update(tokens=F("tokens") + count)


def seconds_until_token(channel: str) -> float:
    rate = channel_rate(channel)
    return 1.0 / rate if rate > 0 else 0.0
