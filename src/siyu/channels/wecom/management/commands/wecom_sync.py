"""`siyu manage wecom_sync`: sync WeCom contacts now, printing progress; resumes a failed run."""

from django.core.management.base import BaseCommand, CommandError

from siyu.channels.wecom.models import SyncRun
from siyu.channels.wecom.selectors import connection_get, sync_run_latest
from siyu.channels.wecom.sync import contacts_sync


class Command(BaseCommand):
    help = "Sync WeCom external contacts into Siyu (resumes the last run if it failed)."

    def handle(self, *args, **options) -> None:
        if connection_get() is None:
            raise CommandError("the WeCom connection is not set up (console: 企业微信)")
        latest = sync_run_latest()
        if latest is not None and latest.status in (SyncRun.Status.QUEUED, SyncRun.Status.RUNNING):
            raise CommandError(f"sync {latest.pk} is {latest.status}; let it finish")
        run = latest if latest is not None and latest.status == SyncRun.Status.FAILED else None
        run = run or SyncRun.objects.create()

        def progress(run: SyncRun) -> None:
            self.stdout.write(
                f"{run.staff_done}/{len(run.userids)} staff · {run.contacts} contacts · "
                f"{run.created} new customers · {run.relationships} friendships"
            )

        run = contacts_sync(run_id=run.pk, on_page=progress)
        if run.status != SyncRun.Status.DONE:
            raise CommandError(f"sync {run.pk} failed: {run.error}; run again to resume")
        self.stdout.write(self.style.SUCCESS(f"sync {run.pk} done"))
