"""Whether slow clients freeze the receiver: signed deliveries answered while N clients hold bodies open.

    make bench            # or: .venv/bin/python bench/slow_clients.py [--clients 0,4,64] [--seconds 10]

Starts devstack's `receiver_only` setup (a private Redis and the Procfile's `web`, sized 2×4 as
in production) and, for each N in --clients:

  slow clients  N connections that send a POST's headers (Content-Length of a whole delivery) and
                half of its body, then one byte every --trickle seconds: the body never completes
                while the phase lasts (a slow or stalled client, or one holding its connection idle);
  sender        meanwhile a signed ~7 KB `issue_comment` delivery every --gap seconds, each a distinct
                comment signed here (the receiver dedupes on the signed body, so a body sent twice is a
                200 duplicate, not a delivery), each on a new
                connection with GitHub's 10 s timeout (GitHub never redelivers on its own), started
                on schedule whether or not the previous one was answered (open loop).

Figures per N: answered (202), timed out (no answer within 10 s), other outcomes, p50/p99 of the
answered ones. Target: with 64 slow clients, none timed out and p99 ≤ 1 s.
Prints a table and writes bench/results/slow_clients.json. Exit status 0 even when the target is
missed; 2 when the run failed, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # devstack and the bot, from the repository root

from bench import harness  # noqa: E402
from bench.harness import ROOT  # noqa: E402
from bench.ingest import PATH, SECRET, Deliveries  # noqa: E402
from devstack import setups  # noqa: E402

WORKERS, THREADS = 2, 4  # the Procfile's defaults
GITHUB_TIMEOUT = 10.0  # GitHub gives up after 10 s and never redelivers on its own
TARGET = {"clients": 64, "timed_out": 0, "p99_s": 1.0}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="0,4,64", help="numbers of slow clients, one phase each")
    parser.add_argument("--seconds", type=float, default=10, help="how long the sender sends in each phase")
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between the sender's deliveries")
    parser.add_argument("--trickle", type=float, default=2.0, help="seconds between a slow client's bytes")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) afterwards")
    return parser.parse_args()


class SlowClients:
    """N connections holding a delivery's body open: headers and half the body, then a byte now and then."""

    def __init__(self, host: str, port: int, count: int, deliveries: Deliveries, trickle: float):
        self.host, self.port, self.count, self.trickle = host, port, count, trickle
        self.deliveries = deliveries
        self.body = deliveries.body(deliveries.PLACEHOLDER)  # for its length; each connection sends its own
        self.socks: list[socket.socket] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)

    def __enter__(self) -> SlowClients:
        for _ in range(self.count):
            body, signature = self.deliveries.new()
            head = (
                f"POST {PATH} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                f"X-GitHub-Event: issue_comment\r\nX-GitHub-Delivery: slow-{uuid.uuid4()}\r\n"
                f"X-Hub-Signature-256: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            s = socket.create_connection((self.host, self.port), timeout=5)
            s.sendall(head + body[: len(body) // 2])
            self.socks.append(s)
        self.thread.start()
        return self

    def _trickle(self) -> None:
        sent = len(self.body) // 2
        while not self.stopping.wait(self.trickle) and sent < len(self.body) - 1:
            for s in self.socks:
                try:
                    s.send(self.body[sent : sent + 1])
                except OSError:
                    pass  # the server closed it: that is its right
            sent += 1

    def closed_by_server(self) -> int:
        """How many of the connections the server has closed (a read timeout, say)."""
        closed = 0
        for s in self.socks:
            s.setblocking(False)
            try:
                closed += s.recv(1, socket.MSG_PEEK) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        return closed

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join()
        for s in self.socks:
            s.close()


def deliver(host: str, port: int, body: bytes, signature: str) -> tuple[str, float]:
    """One signed delivery on a new connection: (outcome, seconds); outcome is the status or `timeout`."""
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issue_comment",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signature,
    }
    started = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=GITHUB_TIMEOUT)
    try:
        conn.request("POST", PATH, body, headers)
        response = conn.getresponse()
        response.read()
        return str(response.status), time.perf_counter() - started
    except TimeoutError:
        return "timeout", time.perf_counter() - started
    except OSError as exc:
        return type(exc).__name__, time.perf_counter() - started
    finally:
        conn.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def phase(host: str, port: int, slow: int, opts, deliveries: Deliveries) -> dict:
    """The sender's outcomes while `slow` clients hold bodies open."""
    sends = [deliveries.new() for _ in range(int(opts.seconds / opts.gap))]  # signed before the clock starts
    with SlowClients(host, port, slow, deliveries, opts.trickle) as clients:
        time.sleep(1)  # let the server take them in
        futures = []
        with ThreadPoolExecutor(max_workers=int(GITHUB_TIMEOUT / opts.gap) + 16) as pool:
            start = time.monotonic()
            for i, (body, signature) in enumerate(sends):
                time.sleep(max(0.0, start + i * opts.gap - time.monotonic()))
                futures.append(pool.submit(deliver, host, port, body, signature))
            results = [f.result() for f in futures]
        closed = clients.closed_by_server()
    answered = [seconds for outcome, seconds in results if outcome == "202"]
    outcomes: dict[str, int] = {}
    for outcome, _ in results:
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    figures = {
        "slow_clients": slow,
        "sent": len(results),
        "answered_202": len(answered),
        "timed_out": outcomes.get("timeout", 0),
        "outcomes": outcomes,
        "p50_s": round(percentile(answered, 50), 4),
        "p99_s": round(percentile(answered, 99), 4),
        "max_s": round(max(answered, default=float("nan")), 4),
        "slow_clients_closed_by_server": closed,
    }
    harness.say(
        f"  {slow:3d} slow clients: {len(answered)}/{len(results)} answered 202, {figures['timed_out']} timed out, "
        f"p50 {figures['p50_s'] * 1000:.1f} ms, p99 {figures['p99_s'] * 1000:.1f} ms; "
        f"{closed} slow clients closed by the server"
    )
    return figures


def bench(run: harness.Run, opts, started: float) -> None:
    deliveries = Deliveries()
    env = {
        "MLOPS_BOT_CONFIG": str(ROOT / "config.toml"),
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    stack = run.track(setups.receiver_only(run.workdir, env, workers=WORKERS, threads=THREADS))
    web = stack.services["web"]
    host, port = "127.0.0.1", int(web.url.rsplit(":", 1)[1])
    # the command line after `mlops-bot web` exec'ed the server
    web_argv = Path(f"/proc/{web.process.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    harness.say(f"receiver {web.url} ({web_argv}); a delivery every {opts.gap} s for {opts.seconds} s per phase")
    phases = [phase(host, port, int(n), opts, deliveries) for n in opts.clients.split(",")]
    worst = next((p for p in phases if p["slow_clients"] == TARGET["clients"]), phases[-1])
    met = worst["timed_out"] <= TARGET["timed_out"] and worst["p99_s"] <= TARGET["p99_s"]
    rows = [("slow clients", "answered / sent", "timed out", "p50 / p99")]
    rows += [
        (
            str(p["slow_clients"]),
            f"{p['answered_202']} / {p['sent']}",
            str(p["timed_out"]),
            f"{p['p50_s'] * 1000:.1f} / {p['p99_s'] * 1000:.1f} ms",
        )
        for p in phases
    ]
    harness.print_table(
        f"mlops-bot slow clients: the Procfile's web ({WORKERS}x{THREADS}), {deliveries.size:,}-byte signed deliveries, "
        f"{os.cpu_count()} CPUs, {time.monotonic() - started:.0f} s",
        rows,
    )
    print(
        f"target: with {TARGET['clients']} slow clients none timed out and p99 <= {TARGET['p99_s']} s — "
        + ("PASS" if met else "FAIL")
    )
    harness.write_results(
        "slow_clients",
        {
            "setup": {"web": web_argv, "gap_s": opts.gap, "seconds": opts.seconds, "trickle_s": opts.trickle},
            "phases": phases,
            "target": TARGET,
            "pass": met,
        },
    )


def main() -> int:
    opts = parse_args()
    started = time.monotonic()
    harness.busy_before_start("latencies may be high")
    return harness.run("mlops-slow-", opts.keep, lambda run: bench(run, opts, started))


if __name__ == "__main__":
    sys.exit(main())
