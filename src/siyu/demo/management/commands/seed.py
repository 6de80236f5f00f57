"""`siyu seed`: generate a deterministic demo brand into an empty database."""

import argparse
import sys
import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from siyu.core.errors import DomainError
from siyu.customers.models import Customer
from siyu.demo.services import demo_seed


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from exc


class RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        elapsed = task.finished_time if task.finished else task.elapsed
        if task.total == 1 or not elapsed:
            return Text("")
        return Text(f"{task.completed / elapsed:,.0f} rows/s", style="progress.data.speed")


class RichProgress:
    """The seed's progress as rich bars, one per step that reports."""

    def __init__(self) -> None:
        self.bars = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            console=Console(file=sys.stdout),
        )
        self.task = None

    def begin(self, label: str, total: int) -> None:
        self.task = self.bars.add_task(label, total=total)

    def advance(self, count: int) -> None:
        self.bars.advance(self.task, count)


class Command(BaseCommand):
    help = (
        "Generate a demo brand: stores, staff with personas, channels, and N customers with "
        "identities, WeCom relationships, merged duplicates and platform orders (imported from "
        "generated Tmall, JD and Douyin export files). The same --seed and "
        "--customers give the same data; times are relative to today."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=int, default=20_000, help="people to generate")
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
        parser.add_argument(
            "--today",
            type=_day,
            help="YYYY-MM-DD: date the data ends on, for runs that repeat exactly",
        )
        existing = parser.add_mutually_exclusive_group()
        existing.add_argument(
            "--force",
            action="store_true",
            help="append to a database that already has customers",
        )
        existing.add_argument(
            "--if-empty",
            action="store_true",
            help="seed only when the database has no customers, otherwise skip",
        )
        parser.add_argument(
            "--chunk-size", type=int, default=20_000, help="people generated per insert"
        )
        parser.add_argument(
            "--no-orders",
            action="store_true",
            help="leave out the platform orders and their imports",
        )

    def handle(self, *args, **options) -> None:
        if options["if_empty"] and Customer.objects.exists():
            self.stdout.write("The database already has customers: skipped seeding.")
            return
        interactive = options["verbosity"] >= 1 and sys.stdout.isatty()
        progress = RichProgress() if interactive else None
        started = time.perf_counter()
        try:
            if progress:
                with progress.bars:
                    ctx = self._seed(options, progress)
            else:
                ctx = self._seed(options, None)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        elapsed = time.perf_counter() - started
        if options["verbosity"] >= 1:
            counts = ", ".join(f"{count} {name}" for name, count in ctx.counts.items())
            self.stdout.write(
                self.style.SUCCESS(f"Seeded in {elapsed:.1f} s (seed {ctx.seed}): {counts}.")
            )
            self.stdout.write("Demo logins: admin, manager01…, staff01… / password siyu-demo")

    def _seed(self, options: dict, progress):
        return demo_seed(
            customers=options["customers"],
            seed=options["seed"],
            today=options["today"],
            append=options["force"],
            progress=progress,
            chunk_size=options["chunk_size"],
            orders=not options["no_orders"],
        )
