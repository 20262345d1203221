"""Overload: what the service completes, answers and keeps alive past its capacity.

    python bench/overload.py [--bundle models/gan3d-cpu] [--seconds 15] [--runs 3]

Measured side by side in one run against one server with the default settings:
1. capacity: wrk with 32 kept-alive connections POSTing npy samples (enough to keep both cores
   busy) -> completed (200) requests per second;
2. overload: 10x those connections (320), and 512 (the issue's reproducer) -> completed 200/s as
   a share of capacity, every status seen (the target: only 200 and 503), socket errors;
3. liveness under each load: GET /health/live on a fresh connection every 50 ms from a separate
   thread (as a kubelet probes) -> p50 / p99 latency.
Targets (#13): at 10x capacity, completed >= 90% of capacity, liveness p99 <= 50 ms, only 200/503.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import threading
import time
from pathlib import Path

from service import start_server  # bench/service.py (this script's folder is on sys.path)

SCRIPT = Path(__file__).with_name("overload_npy.lua")
CAPACITY_CONNECTIONS = 32
PROBE_EVERY_S = 0.05


def _probe(url: str, stop: threading.Event, out: list[float]) -> None:
    """A kubelet-like probe: a fresh TCP connection, one raw GET, the status line read back (a
    raw socket, so that the probe's own Python overhead stays out of what it measures)."""
    host, port = url.removeprefix("http://").split(":")
    request = f"GET /health/live HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            with socket.create_connection((host, int(port)), timeout=5) as s:
                s.sendall(request)
                ok = s.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            ok = False
        out.append((time.perf_counter() - t0) * 1e3 if ok else float("inf"))
        stop.wait(PROBE_EVERY_S)


def load(url: str, connections: int, seconds: int) -> dict:
    """wrk at ``connections`` for ``seconds`` with the liveness prober running alongside."""
    stop, probes = threading.Event(), []
    prober = threading.Thread(target=_probe, args=(url, stop, probes))
    prober.start()
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
             "-s", str(SCRIPT), f"{url}/v1/sample"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        stop.set()
        prober.join()
    statuses = {int(c): int(n) for c, n in re.findall(r"status (\d+) (\d+)", out)}
    probes.sort()
    return {
        "connections": connections,
        "completed_per_s": statuses.get(200, 0) / seconds,
        "statuses": statuses,
        "socket_errors": int(re.search(r"socket_errors (\d+)", out).group(1)),
        "live_p50_ms": statistics.median(probes),
        "live_p99_ms": probes[min(len(probes) - 1, int(0.99 * len(probes)))],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", default="models/gan3d-cpu")
    ap.add_argument("--seconds", type=int, default=15, help="per load level")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    proc, url, _ = start_server(Path(args.bundle))
    try:
        load(url, CAPACITY_CONNECTIONS, 3)  # warm-up
        print("| run | connections | completed 200/s | share of capacity | statuses | "
              "socket errors | liveness p50 / p99 ms |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for run in range(1, args.runs + 1):
            levels = [load(url, c, args.seconds) for c in
                      (CAPACITY_CONNECTIONS, 10 * CAPACITY_CONNECTIONS, 512)]  # fmt: skip
            capacity = levels[0]["completed_per_s"]
            for r in levels:
                codes = ", ".join(f"{c}: {n}" for c, n in sorted(r["statuses"].items()))
                print(f"| {run} | {r['connections']} | {r['completed_per_s']:.1f} | "
                      f"{r['completed_per_s'] / capacity:.0%} | {codes} | {r['socket_errors']} | "
                      f"{r['live_p50_ms']:.1f} / {r['live_p99_ms']:.1f} |")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=60)


if __name__ == "__main__":
    main()
