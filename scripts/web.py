#!/usr/bin/env python3
"""Serve the browser demo (web/) on loopback, configured for the local stack.

    python scripts/web.py [--port PORT]     # make web

Serves the static page and ``/config.json`` (``api_url`` and ``api_key`` from the stack's
``.local/outputs.json``) on ``http://127.0.0.1:<DEVSTACK_PORT + 1>``, the origin that
``make up`` adds to the API's and the uploads bucket's CORS origins. Stops on Ctrl-C, when
``--watch-pid`` is gone, or after ``--exit-after`` seconds.

The page talks HTTPS to the stack, whose certificate comes from the CA in ``.local/tls/``:
import ``.local/tls/ca.pem`` into your browser (or the system store) to use it.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devstack import stack
from devstack.processes import alive

WEB = stack.ROOT / "web"
DEFAULT_PORT = stack.web_port(stack.DEFAULT_PORT)


def page_config(state_dir: Path) -> dict[str, Any]:
    outputs = stack.read_outputs(state_dir)
    return {"api_url": outputs["api_url"], "api_key": outputs["api_key"]}


class Handler(SimpleHTTPRequestHandler):
    """The files of web/, and the page's configuration."""

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/config.json":
            try:
                body = json.dumps(page_config(stack.STATE_DIR)).encode()
            except (OSError, KeyError, ValueError) as error:
                self.send_error(503, f"no local stack outputs ({error}); run make up")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"web: {format % args}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--watch-pid", type=int, help="stop when this process is gone")
    parser.add_argument("--exit-after", type=float, help="stop after this many seconds")
    args = parser.parse_args(argv)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), partial(Handler, directory=str(WEB)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"serving the upload demo on http://127.0.0.1:{args.port}/ (Ctrl-C stops it)", flush=True)
    started = time.monotonic()
    try:
        while True:
            time.sleep(0.5)
            if args.watch_pid and not alive(args.watch_pid):
                break
            if args.exit_after and time.monotonic() - started > args.exit_after:
                break
    except KeyboardInterrupt:
        pass
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
