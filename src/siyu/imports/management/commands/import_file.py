"""`siyu import customers|orders|tags FILE --channel C`: load a file with a progress bar."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from siyu.core.errors import DomainError
from siyu.customers.models import Channel
from siyu.imports.models import ImportJob, SavedMapping
from siyu.imports.presets import PRESETS_BY_KEY
from siyu.imports.services import (
    FINAL,
    import_job_create,
    import_job_preview,
    import_job_rollback,
    import_job_run,
)

KINDS = {
    "customers": ImportJob.Kind.CUSTOMERS,
    "orders": ImportJob.Kind.ORDERS,
    "tags": ImportJob.Kind.TAGS,
}


class Command(BaseCommand):
    help = "Import customers, orders or customers' tags from a CSV/XLSX export into the pool."

    def add_arguments(self, parser):
        parser.add_argument("kind", nargs="?", choices=sorted(KINDS))
        parser.add_argument("file", nargs="?", type=Path)
        parser.add_argument("--channel", help="source channel code, e.g. tmall (not for tags)")
        parser.add_argument(
            "--tag", default="", help='tags files: put "group:tag" on every customer in the file'
        )
        parser.add_argument("--mapping", help="a saved mapping's name or a built-in preset key")
        parser.add_argument("--encoding", help="override the detected encoding, e.g. gb18030")
        parser.add_argument("--sheet", help="XLSX sheet name (default: the first with data)")
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would happen, change nothing"
        )
        parser.add_argument("--resume", type=int, metavar="JOB", help="resume a stopped job")
        parser.add_argument(
            "--rollback", type=int, metavar="JOB", help="remove what a finished job added"
        )

    def handle(self, *args, **options):
        if options["resume"] is not None and options["dry_run"]:
            raise CommandError("--dry-run previews a new file; it cannot resume a job")
        if options["rollback"] is not None:
            job = ImportJob.objects.filter(pk=options["rollback"]).first()
            if job is None:
                raise CommandError(f"no import job {options['rollback']}")
            try:
                job = import_job_rollback(job=job)
            except DomainError as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(f"Job {job.pk}: {job.message}")
            return
        try:
            job = self._job(options)
            with self._progress(job) as advance:
                if options["dry_run"]:
                    job = import_job_preview(job=job, progress=advance)
                    if job.preview_failed:
                        raise CommandError(job.message)
                    counts = job.preview["counts"]
                else:
                    job = import_job_run(job=job, progress=advance)
                    counts = job.counts
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        if job.kind == ImportJob.Kind.TAGS:  # a tags file never creates or merges people
            counts = {k: v for k, v in counts.items() if k not in ("created", "merged")}
        summary = ", ".join(f"{k} {v:,}" for k, v in counts.items())
        title = "Would import" if options["dry_run"] else f"Job {job.pk} {job.state}"
        self.stdout.write(f"{title}: {summary}")
        if job.message:
            self.stdout.write(f"Reason: {job.message}")
        if job.error_report:
            self.stdout.write(f"Rows that did not load: {job.error_report}")
        if job.state == ImportJob.State.FAILED:
            raise CommandError(
                f"import failed: once the reason above is fixed, resume with --resume {job.pk}, "
                f"or remove what it added with --rollback {job.pk}"
            )

    def _job(self, options) -> ImportJob:
        if options["resume"] is not None:
            job = ImportJob.objects.filter(pk=options["resume"]).first()
            if job is None:
                raise CommandError(f"no import job {options['resume']}")
            if job.state in FINAL:
                state = job.state.replace("_", " ")
                raise CommandError(f"job {job.pk} is {state}: nothing to resume")
            return job
        tags = options["kind"] == "tags"
        if not (options["kind"] and options["file"] and (options["channel"] or tags)):
            raise CommandError("give KIND FILE --channel CODE, or --resume/--rollback JOB")
        channel = None
        if options["channel"]:
            channel = Channel.objects.filter(code=options["channel"]).first()
        if channel is None and options["channel"]:
            codes = ", ".join(Channel.objects.values_list("code", flat=True)) or "none yet"
            raise CommandError(f"unknown channel {options['channel']!r}; channels: {codes}")
        if not options["file"].is_file():
            raise CommandError(f"no such file: {options['file']}")
        preset, columns = options["mapping"], None
        saved = SavedMapping.objects.filter(name=preset).first() if preset else None
        if saved is not None:
            if saved.kind != KINDS[options["kind"]]:
                raise CommandError(f"saved mapping {saved.name!r} is for {saved.kind} files")
            preset, columns = None, saved.columns
        elif preset and preset not in PRESETS_BY_KEY:
            names = ", ".join(SavedMapping.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(
                f"no saved mapping or preset {preset!r}; saved mappings: {names}; "
                f"presets: {', '.join(PRESETS_BY_KEY)}"
            )
        return import_job_create(
            path=options["file"],
            kind=KINDS[options["kind"]],
            channel=channel,
            encoding=options["encoding"],
            sheet=options["sheet"],
            preset=preset,
            columns=columns,
            tag=options["tag"],
        )

    def _progress(self, job: ImportJob):
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>9} rows/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            # Drawn where the command writes (its stdout, unwrapped from Django's OutputWrapper,
            # which would end every redraw with a newline), and only in a terminal.
            console=Console(file=getattr(self.stdout, "_out", self.stdout)),
            disable=not self.stdout.isatty(),
        )
        remaining = max(job.rows_total - job.rows_read, 0) or None  # None: no estimate (XLSX)
        task = progress.add_task(job.original_name, total=remaining, rate="–")

        class Bar:
            def __enter__(self_inner):
                progress.start()
                return self_inner.advance

            def __exit__(self_inner, *exc):
                progress.stop()

            def advance(self_inner, count: int) -> None:
                progress.advance(task, count)
                elapsed = progress.tasks[0].elapsed or 0
                done = progress.tasks[0].completed
                progress.update(task, rate=f"{done / elapsed:,.0f}" if elapsed else "–")

        return Bar()
