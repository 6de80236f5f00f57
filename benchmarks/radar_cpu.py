"""CPU and latency of the tracked-link page per request, in one process, without a server.

Calls siyu.wsgi.application directly (what the server calls) for the first link in the database
of SIYU_DATABASE_URL, one request after another: `open` is a new visit each time (the view's
INSERT), `reload` sends the visit cookie. Prints this process's CPU per request and the latency
percentiles; the PostgreSQL server's share is not included. On a machine shared with other
work this is steadier than wrk's requests/s, which measure what the neighbours leave.

    SIYU_DATABASE_URL=postgres://postgres@127.0.0.1:5432/siyu_radar_bench \\
        .venv/bin/python benchmarks/radar_cpu.py --requests 1000

Run benchmarks/radar.py first (it seeds the link). Views recorded here stay pending, as in
radar.py, until a worker or `material_views_follow_up` follows them up.
"""

import argparse
import io
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
os.environ.setdefault("SIYU_DEBUG", "0")

import django

django.setup()

from siyu.content.models import TrackedLink  # noqa: E402
from siyu.wsgi import application  # noqa: E402

PHONE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.50"


def get(code: str, cookie: str | None = None) -> list[tuple[str, str]]:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": f"/m/{code}",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
        "HTTP_USER_AGENT": PHONE_UA,
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    started = {}

    def start_response(status, headers, exc_info=None):
        started["status"], started["headers"] = status, headers

    result = application(environ, start_response)
    b"".join(result)
    if hasattr(result, "close"):  # optional in WSGI
        result.close()
    if not started["status"].startswith("200"):
        sys.exit(f"/m/{code} answered {started['status']}")
    return started["headers"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    code = TrackedLink.objects.values_list("code", flat=True).order_by("pk").first()
    if code is None:
        sys.exit("no tracked link: run benchmarks/radar.py first")
    headers = get(code)  # warms up, and gives the visit cookie
    cookie = next(v for k, v in headers if k == "Set-Cookie").split(";", 1)[0]
    load = os.getloadavg()
    print(f"/m/{code}, {args.requests:,} requests per run; load average {load[0]:.2f}")
    for label, visit in (("reload", cookie), ("open", None)):
        times = []
        cpu = time.process_time()
        for _ in range(args.requests):
            start = time.perf_counter()
            get(code, visit)
            times.append(time.perf_counter() - start)
        cpu = (time.process_time() - cpu) / args.requests
        times.sort()
        n = len(times)
        print(
            f"  {label:7} CPU {cpu * 1000:.2f} ms/request; latency p50 {times[n // 2] * 1000:.2f} "
            f"p99 {times[int(n * 0.99)] * 1000:.2f} max {times[-1] * 1000:.1f} ms"
        )


if __name__ == "__main__":
    main()
