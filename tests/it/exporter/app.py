"""A small app instrumented with the real prometheus_client library, for
backstop's traffic tests. It counts requests the test asks it to have
served, and serves /metrics in whichever format the scraper's Accept asks
for (prometheus_client's own choose_encoder), or misbehaves on command.

    python app.py PORT

Control (the test's, not the scraper's):
    GET /serve?path=/api/orders&code=200&n=10&seconds=0.05   count n requests
    GET /remove?path=/api/orders&code=503                    drop a series
    GET /mode?name=normal|reset|nan|nan-text|inf-only|huge|slow|binary|text-only
"""

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder, generate_latest

BUCKETS = (0.05, 0.1, 0.2, 0.5, 1.0)


class Odd:
    """Series the mode adds beside the real ones."""

    def __init__(self):
        self.mode = "normal"
        self.inf_only = 0

    def collect(self):
        if self.mode.startswith("nan"):
            c = CounterMetricFamily("odd_requests", "odd values", labels=["path", "code"])
            c.add_metric(["/api/nan", "200"], float("nan"))
            c.add_metric(["/api/inf", "500"], float("inf"))
            yield c
        if self.mode == "inf-only":
            h = HistogramMetricFamily("only_inf_seconds", "a histogram with only +Inf", labels=[])
            h.add_metric([], buckets=[("+Inf", self.inf_only)], sum_value=0.0)
            yield h


class App:
    def __init__(self):
        self.odd = Odd()
        self.fresh()

    def fresh(self):
        """A new registry: every counter starts from zero, as after a restart."""
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests", "Requests served", ["path", "code"], registry=self.registry
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Request duration",
            ["path"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.registry.register(self.odd)


APP = App()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/serve":
            n = int(q.get("n", "1"))
            path, code = q.get("path", "/api/orders"), q.get("code", "200")
            seconds = float(q.get("seconds", "0.01"))
            APP.requests.labels(path, code).inc(n)
            for _ in range(n):
                APP.duration.labels(path).observe(seconds)
            APP.odd.inf_only += n
            return self.answer(200, b"ok\n")
        if url.path == "/remove":
            APP.requests.remove(q["path"], q["code"])
            return self.answer(200, b"ok\n")
        if url.path == "/mode":
            APP.odd.mode = q["name"]
            if q["name"] == "reset":
                APP.fresh()
            return self.answer(200, b"ok\n")
        if url.path == "/metrics":
            return self.metrics()
        return self.answer(404, b"not found\n")

    def metrics(self):
        mode = APP.odd.mode
        if mode == "slow":
            time.sleep(2)
        if mode == "huge":
            line = b"# padding comment line to make the body large, ignored by parsers\n"
            body = line * (20 * 1024 * 1024 // len(line) + 1)
            return self.answer(200, body)
        if mode == "binary":
            return self.answer(200, generate_latest(APP.registry) + b"bad_\xff_total 1\n")
        if mode in ("text-only", "nan-text"):
            return self.answer(200, generate_latest(APP.registry), "text/plain; version=0.0.4")
        encoder, content_type = choose_encoder(self.headers.get("Accept"))
        return self.answer(200, encoder(APP.registry), content_type)


def main():
    port = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
