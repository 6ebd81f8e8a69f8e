"""Shared pieces of bench/compare and bench/scale (Python 3.11, stdlib only).

A local target app, process accounting from /proc, backstop's build and
configuration, and Markdown output. Run directly, it serves the target app:
`python3 benchkit.py serve PATHS` prints its port and answers until killed.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024

# The body both tools are asked to find, and the body the app sends.
BODY_TOKEN = '"status":"ok"'
_OK_BODY = b'{"status":"ok"}'
_OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_OK_BODY), _OK_BODY)
)
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"


def fail(message: str) -> None:
    """Stops the benchmark with a message that says what to do."""
    print(f"{Path(sys.argv[0]).name}: {message}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- target app


class _AppProtocol(asyncio.Protocol):
    """Minimal HTTP/1.1 with keep-alive: GET /t/<i> answers 200 with a small
    JSON body. Parsing only what a probe sends keeps the app far cheaper per
    request than either prober, so it is never the bottleneck."""

    def __init__(self, paths: set[bytes]):
        self.paths = paths
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport):  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > 65536:
                    self.transport.close()
                return
            head, self.buf = self.buf[:end], self.buf[end + 4 :]
            line, _, headers = head.partition(b"\r\n")
            parts = line.split(b" ")
            path = parts[1] if len(parts) == 3 else b""
            self.transport.write(_OK if path in self.paths else _NOT_FOUND)
            if parts[-1] == b"HTTP/1.0" or b"connection: close" in headers.lower():
                self.transport.close()
                return


def _serve(paths: int) -> None:
    async def main() -> None:
        wanted = {b"/t/%d" % i for i in range(paths)}
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _AppProtocol(wanted), "127.0.0.1", 0, backlog=1024
        )
        print(server.sockets[0].getsockname()[1], flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()

    asyncio.run(main())


class App:
    """The target app in its own process, so its CPU is not any prober's."""

    def __init__(self, paths: int):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "serve", str(paths)],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            fail(f"the target app did not start (it printed {line!r})")
        self.port = int(line)
        self.paths = paths
        self.stat = Proc(self.proc.pid)

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.port}/t/{i}"

    def stop(self) -> None:
        stop_process(self.proc)


# ------------------------------------------------------- process accounting


@dataclass
class Usage:
    """One reading of a process: CPU so far and memory now."""

    cpu_ms: float
    rss_kib: int
    anon_kib: int
    hwm_kib: int
    threads: int


class Proc:
    """Reads a running process's counters from /proc."""

    def __init__(self, pid: int):
        self.pid = pid

    def usage(self) -> Usage:
        with open(f"/proc/{self.pid}/stat") as f:
            # Fields after the command name, which may itself hold spaces.
            fields = f.read().rsplit(")", 1)[1].split()
        utime, stime = int(fields[11]), int(fields[12])
        status = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                status[key] = value.split()
        kib = lambda key: int(status.get(key, ["0"])[0])  # noqa: E731
        return Usage(
            cpu_ms=(utime + stime) * 1000.0 / CLK_TCK,
            rss_kib=kib("VmRSS"),
            anon_kib=kib("RssAnon"),
            hwm_kib=kib("VmHWM"),
            threads=kib("Threads"),
        )


def sockets(pid: int) -> int:
    """Open sockets of a process: listeners plus pooled connections."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass  # closed while we looked
    return n


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, what: str, log: Path) -> None:
    """Waits until `url` answers 200, or fails with the process's log."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"{what} exited with status {proc.returncode}; its log:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    fail(f"{what} did not answer {url} within 30 s; its log:\n{log.read_text()}")


# ------------------------------------------------------------------ backstop


def backstop_binary(given: str | None, rebuild: bool) -> Path:
    """The release binary: `given`, or target/release/backstop, built when
    missing (or when asked to)."""
    if given:
        path = Path(given)
        if not os.access(path, os.X_OK):
            fail(f"--backstop {given}: not an executable file")
        return path
    path = REPO / "target" / "release" / "backstop"
    if rebuild or not path.exists():
        print("building backstop (cargo build --release) ...", file=sys.stderr, flush=True)
        done = subprocess.run(
            ["cargo", "build", "--release", "--bin", "backstop"], cwd=REPO
        )
        if done.returncode != 0 or not path.exists():
            fail("cargo build --release failed; see the output above")
    return path


def duration_text(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def parse_duration(text: str) -> int:
    """`90s`, `5m`, `6h` to seconds (what the scripts' flags accept)."""
    m = re.fullmatch(r"(\d+)(s|m|h)", text.strip())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m or 1h")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]


def backstop_config(listen: int, urls: list[str], interval_ms: int, window_s: int) -> str:
    """A sidecar-shaped configuration: every target expects 200 and the body
    token; one availability SLO; a consecutive-failures rule, an error-rate
    rule over `window_s` and a fast burn-rate rule whose long window is
    `window_s` (so `window_s` is the longest window, which sizes the rings).
    No action: the rules are evaluated and exported, nothing is called."""
    short = max(60, window_s // 12)
    lines = ["service: bench", f"listen: 127.0.0.1:{listen}", "targets:"]
    for i, url in enumerate(urls):
        lines += [
            f"  - name: t{i}",
            f"    url: {url}",
            f"    interval: {interval_ms}ms",
            f"    timeout: {interval_ms}ms",
            f"    expect: {{ status: [200], body_contains: '{BODY_TOKEN}' }}",
        ]
    lines += [
        "slos:",
        "  - name: availability",
        "    objective: 99.9",
        "rules:",
        "  - name: down",
        "    when: { consecutive_failures: 3, target: t0 }",
        "  - name: error-rate",
        f'    when: {{ error_rate: {{ above: "5%", window: {duration_text(window_s)} }} }}',
        "  - name: fast-burn",
        "    when: { burn_rate: { slo: availability, "
        f"short: {duration_text(short)}, long: {duration_text(window_s)}, factor: 14.4 }} }}",
    ]
    return "\n".join(lines) + "\n"


class Backstop:
    """A running `backstop run --config FILE`."""

    def __init__(self, binary: Path, workdir: Path, name: str, urls: list[str],
                 interval_ms: int, window_s: int):
        self.port = free_port()
        self.config = workdir / f"{name}.yaml"
        self.config.write_text(backstop_config(self.port, urls, interval_ms, window_s))
        self.log = workdir / f"{name}.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [str(binary), "run", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.stat = Proc(self.proc.pid)
        wait_http(f"http://127.0.0.1:{self.port}/healthz", self.proc, "backstop", self.log)

    def probes(self) -> tuple[int, int]:
        """(all probes, failed probes) from backstop_probes_total."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        total = failed = 0
        for line in text.splitlines():
            if line.startswith("backstop_probes_total{"):
                value = int(float(line.rsplit(" ", 1)[1]))
                total += value
                if 'result="success"' not in line:
                    failed += value
        return total, failed

    def stop(self) -> None:
        stop_process(self.proc)


def backstop_version(binary: Path) -> str:
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    return (done.stdout or done.stderr).strip() or "unknown"


# ---------------------------------------------------------------- reporting


def machine_info() -> list[str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- machine: {os.cpu_count()} CPUs (nproc), {model}, "
        f"Linux {platform.release()}, Python {platform.python_version()}",
        f"- load average at start (1/5/15 min): {load}",
    ]


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def progress(message: str) -> None:
    """Progress goes to stderr so that stdout is only the Markdown report."""
    print(f"... {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve" and sys.argv[2].isdigit():
        _serve(int(sys.argv[2]))
    else:
        fail("usage: benchkit.py serve PATHS")
