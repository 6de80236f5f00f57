"""Daily recomputation of RFM, lifecycle stages and lifetime value, and on-demand runs.

Huey's clock is UTC: 19:30 UTC is 03:30 in China, when the console is quiet.
"""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from siyu.segments.services import clv_recompute, rfm_recompute, stages_recompute


@db_periodic_task(crontab(hour="19", minute="30"))
@lock_task("segments-rfm")
def rfm_recompute_daily() -> None:
    rfm_recompute()


@db_periodic_task(crontab(hour="19", minute="45"))
@lock_task("segments-stages")
def stages_recompute_daily() -> None:
    stages_recompute()


# After RFM and stages: a fit over the same orders, on its own lock.
@db_periodic_task(crontab(hour="20", minute="0"))
@lock_task("segments-clv")
def clv_recompute_daily() -> None:
    clv_recompute()


@db_task()
@lock_task("segments-rfm")
def rfm_recompute_task() -> dict[str, int]:
    return rfm_recompute().groups


@db_task()
@lock_task("segments-stages")
def stages_recompute_task() -> int:
    return sum(stages_recompute().values())


@db_task()
@lock_task("segments-clv")
def clv_recompute_task() -> int:
    return clv_recompute().pk
