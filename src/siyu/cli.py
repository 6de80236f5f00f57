"""The `siyu` command: run the demo, the web console, the worker, and management tasks."""

import argparse
import os
import signal
import subprocess
import sys
import time

DEMO_CUSTOMERS = 20_000
DEMO_LOGIN = """
Siyu is running on http://{bind}/

  Log in as  admin      / siyu-demo   (sees everything, full phone numbers)
             manager01  / siyu-demo   (a store manager: that store's customers)
             staff01    / siyu-demo   (a staff member: their own customers)

Press Ctrl-C to stop the web console and the worker.
"""


def _django(*args: str) -> None:
    """Run a Django management command in this process."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["siyu", *args])


def _bind(value: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets) as argparse reads --bind."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT, e.g. 0.0.0.0:8000")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _serve_argv(bind: tuple[str, int], workers: int, threads: int = 1) -> list[str]:
    """Granian: HTTP in Rust (keep-alive, slow clients held without a thread) in front of
    Django on `threads` threads per process. More threads help slow pages that wait on the
    database, and cost fast ones: they take turns on one interpreter (benchmarks/radar.py)."""
    host, port = bind
    return [
        sys.executable, "-m", "granian", "--interface", "wsgi", "siyu.wsgi:application",
        "--host", host, "--port", str(port),
        "--workers", str(workers), "--blocking-threads", str(threads),
        "--respawn-failed-workers", "--no-ws", "--access-log",
    ]  # fmt: skip


def _worker_argv(workers: int) -> list[str]:
    return [sys.executable, "-m", "siyu.cli", "manage", "run_huey", "--workers", str(workers)]


def cmd_demo(args: argparse.Namespace) -> int:
    _django("migrate", "--noinput", "-v", "0")
    _django("seed", "--if-empty", "--customers", str(args.customers))
    host, port = args.bind
    print(DEMO_LOGIN.format(bind=f"{host}:{port}"), flush=True)
    children = [
        subprocess.Popen(_worker_argv(1)),
        subprocess.Popen(_serve_argv(args.bind, 2)),
    ]
    try:
        while all(child.poll() is None for child in children):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait(timeout=30)
    return max((child.returncode or 0) for child in children)


def cmd_serve(args: argparse.Namespace) -> int:
    if args.migrate:
        _django("migrate", "--noinput")
    os.execv(sys.executable, _serve_argv(args.bind, args.workers, args.threads))


def cmd_worker(args: argparse.Namespace) -> int:
    _django("run_huey", "--workers", str(args.workers))
    return 0


# Commands handed to Django as they are, options included.
PASSTHROUGH = {
    "seed": ("seed", "generate a deterministic demo brand (see: siyu seed --help)"),
    "migrate": ("migrate", "apply database migrations"),
    "import": (
        "import_file",
        "import customers, orders or tags from a CSV/XLSX export (see: siyu import --help)",
    ),
    "manage": (None, "run any Django management command (see: siyu manage help)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="siyu",
        description="Siyu: a self-hosted SCRM for private-domain customer operations.",
        epilog="Configuration comes from SIYU_* environment variables; see docs/configuration.md.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="migrate, seed a demo brand if the database is empty, run console and worker",
        description="Migrate the database, seed a demo brand when it has no customers, then "
        "run the web console and a background worker until Ctrl-C.",
    )
    demo.add_argument("--bind", type=_bind, default="127.0.0.1:8000", help="address to serve on")
    demo.add_argument("--customers", type=int, default=DEMO_CUSTOMERS, help="customers to seed")
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser(
        "serve",
        help="run the web console and API (granian)",
        description="Run the web console and API with granian. Run several on several "
        "machines behind a load balancer when SIYU_DATABASE_URL points at PostgreSQL.",
    )
    serve.add_argument("--bind", type=_bind, default="127.0.0.1:8000", help="address to serve on")
    serve.add_argument(
        "--workers", type=int, default=2, help="web worker processes (one per CPU core)"
    )
    serve.add_argument(
        "--threads",
        type=int,
        default=1,
        help="request threads per process (1 for the fastest "
        "pages; more when some pages wait long on the database)",
    )
    serve.add_argument("--migrate", action="store_true", help="apply migrations first")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser(
        "worker",
        help="run the background worker (scheduled and queued jobs)",
        description="Run the Huey consumer that executes background jobs and periodic "
        "schedules. With SIYU_REDIS_URL set, workers on several machines share the queue.",
    )
    worker.add_argument("--workers", type=int, default=2, help="worker threads")
    worker.set_defaults(func=cmd_worker)

    for name, (_command, text) in PASSTHROUGH.items():
        sub.add_parser(name, help=text, description=text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PASSTHROUGH:
        command, _text = PASSTHROUGH[argv[0]]
        _django(*([command] if command else []), *argv[1:])
        return 0
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
