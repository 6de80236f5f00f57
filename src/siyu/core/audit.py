"""The audit log's one writer and its reader for the console."""

from django.db.models import Model, QuerySet

from siyu.core.models import AuditLog


def audit_record(
    *,
    actor,
    action: str,
    target: Model | None = None,
    target_type: str = "",
    target_id: str | int = "",
    summary: str = "",
    detail: dict | None = None,
    ip: str | None = None,
) -> AuditLog:
    if target is not None:
        target_type = target._meta.label_lower
        target_id = target.pk
    return AuditLog.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        summary=summary[:200],
        detail=detail or {},
        ip=ip,
    )


def audit_list(*, action: str = "", actor_id: int | None = None, target: str = "") -> QuerySet:
    qs = AuditLog.objects.select_related("actor")
    if action:
        qs = qs.filter(action=action)
    if actor_id:
        qs = qs.filter(actor_id=actor_id)
    if target:
        target_type, _, target_id = target.partition(":")
        qs = qs.filter(target_type=target_type)
        if target_id:
            qs = qs.filter(target_id=target_id)
    return qs


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None
