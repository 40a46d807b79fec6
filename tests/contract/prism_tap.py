#!/usr/bin/env python3
"""A pass-through HTTP proxy in front of Prism that records, for every request, its method, target,
body, status and the violations Prism found in it and its response (Prism's sl-violations header,
which belongs to exactly that exchange, however many requests are in flight). One JSON object a
line in RECORD. Prints "listening on http://127.0.0.1:PORT" once it accepts connections.
Usage: prism_tap.py PRISM_URL RECORD"""
import http.client
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

upstream = urllib.parse.urlsplit(sys.argv[1])
record = open(sys.argv[2], "a", encoding="utf-8")
lock = threading.Lock()
HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length",
       "proxy-connection", "te", "trailer", "upgrade", "date", "server"}


class Tap(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=120)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status, rheaders = resp.status, resp.getheaders()
        finally:
            conn.close()
        violations = next((v for k, v in rheaders if k.lower() == "sl-violations"), None)
        try:
            violations = json.loads(violations) if violations else []
        except ValueError:  # "Too many violations! ..." (truncated)
            violations = [{"location": ["?"], "message": violations}]
        with lock:
            record.write(json.dumps({
                "method": self.command, "target": self.path, "status": status,
                "body": body.decode("utf-8", "replace") if body else None,
                "violations": violations}) + "\n")
            record.flush()
        self.send_response(status)
        for k, v in rheaders:
            if k.lower() not in HOP:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = forward


server = ThreadingHTTPServer(("127.0.0.1", 0), Tap)
server.daemon_threads = True
print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
