"""A webhook receiver for the system test: prints every POSTed JSON body as one line on stdout.

The `alert-receiver` service of tests/system/docker-compose.test.yml runs it (in the S3 stand-in's
image, which has Python); the stack's ALERT_WEBHOOK_URL points at it and the test reads what
arrived from the service's log (lines starting with ``ALERT ``). Standard library only.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload = json.loads(body)
        except json.JSONDecodeError:
            self.send_response(400)
            self.end_headers()
            print(f"NOT JSON {self.headers.get('Content-Type')}: {body[:200]!r}", flush=True)
            return
        print("ALERT " + json.dumps({"path": self.path, "content_type": self.headers.get("Content-Type"), "body": payload}), flush=True)
        self.send_response(204)
        self.end_headers()

    def do_GET(self):  # noqa: N802 (the healthcheck)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8099
    print(f"receiver: listening on :{port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
