"""A local HTTP server standing in for an outside service (WeCom, an SMS gateway, a webhook
receiver) in a test."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# How often the server looks for shutdown(): each test's teardown waits for it, up to the
# standard library's 0.5 s otherwise.
POLL_SECONDS = 0.02


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """Start a server on a free port of 127.0.0.1 in a daemon thread; stop it with
    shutdown() and server_close()."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(POLL_SECONDS,), daemon=True).start()
    return server
