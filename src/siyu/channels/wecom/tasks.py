"""The worker's side of the WeCom connector: thin wrappers around the services."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from siyu.channels.wecom import services


@db_task()
def callback_process_task(callback_id: int) -> None:
    services.callback_process(callback_id=callback_id)


# Callbacks that failed (WeCom unreachable, a worker died) are tried again every minute.
@db_periodic_task(crontab(minute="*"))
def callbacks_retry_periodic() -> int:
    return services.callbacks_retry()


@db_task()
def contacts_sync_task(run_id: int) -> None:
    from siyu.channels.wecom.sync import contacts_sync

    contacts_sync(run_id=run_id)


# A full sync every night catches what callbacks missed (WeCom does not call back for changes
# made through the API, and a callback can be lost while Siyu is down). 19:17 UTC is 03:17 in
# Shanghai, after the nightly segment jobs.
@db_periodic_task(crontab(hour="19", minute="17"))
def contacts_sync_nightly() -> None:
    from siyu.channels.wecom.selectors import connection_get
    from siyu.channels.wecom.sync import sync_run_start

    if connection_get() is not None:
        sync_run_start()


# Hourly, so the caps start again at the organisation's midnight whatever its zone; a code
# whose offered staff do not change costs one query and no WeCom call.
@db_periodic_task(crontab(minute="0"))
def channel_codes_reset_caps_daily() -> int:
    return services.channel_codes_reset_caps()


# WeCom completes a transfer 24 hours after it starts (unless the customer refuses).
@db_periodic_task(crontab(minute="*/10"))
def transfers_poll_periodic() -> int:
    from siyu.channels.wecom.transfers import transfers_poll

    return transfers_poll()


# Mass messages: staff confirm WeCom's tasks in their client, results trickle in.
@db_periodic_task(crontab(minute="*/10"))
def mass_messages_poll_periodic() -> int:
    from siyu.channels.wecom.mass import mass_messages_poll

    return mass_messages_poll()


# A sync whose worker died stays "running" and blocks the next one: mark it failed (resumable).
@db_periodic_task(crontab(minute="*/5"))
def sync_runs_reap_periodic() -> int:
    from siyu.channels.wecom.sync import sync_runs_reap_stuck

    return sync_runs_reap_stuck()


# Corp tags from Siyu to WeCom: pushed after the change commits, and every minute what WeCom
# could not take (one at a time, in order: a rename must not overtake the creation).
@db_task()
@lock_task("wecom-corp-tags")
def corp_tags_push_task() -> int:
    from siyu.channels.wecom.corptags import corp_tags_push
    from siyu.channels.wecom.selectors import connection_get

    return corp_tags_push() if connection_get() is not None else 0


@db_task()
@lock_task("wecom-tag-marks")
def tag_marks_push_task() -> int:
    from siyu.channels.wecom.corptags import tag_marks_push
    from siyu.channels.wecom.selectors import connection_get

    return tag_marks_push() if connection_get() is not None else 0


@db_periodic_task(crontab(minute="*"))
def corp_tags_push_periodic() -> None:
    from siyu.channels.wecom.models import CorpTagOp, TagMark

    if CorpTagOp.objects.filter(status=CorpTagOp.Status.PENDING).exists():
        corp_tags_push_task()
    if TagMark.objects.exists():
        tag_marks_push_task()
