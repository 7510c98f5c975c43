#!/usr/bin/env python3
"""record_fetch.py: what deploy/bench.sh needs to replay real clones with curl.

  record_fetch.py proxy UPSTREAM_PORT OUT_DIR
      A loopback HTTP proxy: prints the port it listens on, then forwards every request to
      127.0.0.1:UPSTREAM_PORT and sends the answer back as it arrives, until killed. The body of
      each POST to .../git-upload-pack is kept, exactly as the client sent it (gzipped when git
      gzipped it), as OUT_DIR/N.body, with OUT_DIR/N.headers holding the headers a replay needs
      (Content-Type, Content-Encoding, Git-Protocol), one "Name: value" per line.

  record_fetch.py watch STOPFILE PID
      Until STOPFILE exists, looks at every process every few milliseconds and then prints
      "pack-objects N peak-rss-kib M": N the number of distinct `git pack-objects` processes
      seen (git's pack generation, one per clone it answers), M the largest resident size of
      process PID (forgelet) seen meanwhile.

  record_fetch.py pack ANSWER
      Writes the pack inside an upload-pack answer (protocol v0 or v2, side band 1; progress on
      band 2 dropped) to stdout, for `git index-pack --strict`. Fails when there is none.
"""

import http.client
import os
import socketserver
import sys
import threading
from http.server import BaseHTTPRequestHandler

KEPT = ("content-type", "content-encoding", "git-protocol")


def read_body(handler):
    length = handler.headers.get("Content-Length")
    if length is not None:
        return handler.rfile.read(int(length))
    if handler.headers.get("Transfer-Encoding", "").lower() != "chunked":
        return b""
    body = bytearray()
    while True:
        size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
        if size == 0:
            while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return bytes(body)
        body += handler.rfile.read(size)
        handler.rfile.readline()


class Proxy(BaseHTTPRequestHandler):
    upstream = 0
    out_dir = "."
    count = 0
    lock = threading.Lock()

    def log_message(self, *args):
        pass

    def forward(self):
        body = read_body(self)
        if self.command == "POST" and self.path.endswith("/git-upload-pack"):
            with Proxy.lock:
                Proxy.count += 1
                n = Proxy.count
            base = os.path.join(Proxy.out_dir, str(n))
            with open(base + ".body", "wb") as f:
                f.write(body)
            with open(base + ".headers", "w") as f:
                for name, value in self.headers.items():
                    if name.lower() in KEPT:
                        f.write(f"{name}: {value}\n")
        conn = http.client.HTTPConnection("127.0.0.1", Proxy.upstream, timeout=600)
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in ("transfer-encoding", "connection", "content-length")
        }
        if body or self.command == "POST":
            headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Connection", "close")
        self.end_headers()
        while True:
            chunk = resp.read(1 << 16)
            if not chunk:
                break
            self.wfile.write(chunk)
        conn.close()
        self.close_connection = True

    do_GET = forward
    do_POST = forward


def pack(path):
    data = open(path, "rb").read()
    out = sys.stdout.buffer
    in_pack = False
    found = False
    i = 0
    while i + 4 <= len(data):
        length = int(data[i : i + 4], 16)
        if length < 4:
            i += 4
            continue
        payload = data[i + 4 : i + length]
        i += length
        if payload in (b"packfile\n", b"NAK\n"):
            in_pack = True
            continue
        if in_pack and payload[:1] == b"\x01":
            out.write(payload[1:])
            found = True
    if not found:
        sys.exit(f"{path}: no pack in the answer")


def watch(stop, pid):
    import time

    seen = set()
    peak = 0
    while not os.path.exists(stop):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if b"pack-objects" in cmd:
                seen.add(entry)
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.003)
    print(f"pack-objects {len(seen)} peak-rss-kib {peak}", flush=True)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "proxy":
        Proxy.upstream = int(sys.argv[2])
        Proxy.out_dir = sys.argv[3]
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Proxy)
        server.daemon_threads = True
        print(server.server_address[1], flush=True)
        server.serve_forever()
    elif len(sys.argv) == 4 and sys.argv[1] == "watch":
        watch(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "pack":
        pack(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
