"""One hostile client against the service (issue 34): what each attack gets back, how long it
takes, what liveness sees meanwhile, and what it costs the server in memory.

    python bench/attacks.py [--bundle models/gan3d-cpu]

One server with the default settings, one run. Liveness: a raw-socket GET /health/live every
50 ms from a separate thread (bench/overload.py); the worst probe latency while an attack runs
is its stall. Memory: the server's resident set before, its peak during (VmHWM, reset before
each attack) and after. Targets: cases 1-2 answered 4xx within 1 s and no stall over 100 ms;
answers under the cap (GAN3D_MAX_RESPONSE_BYTES) or 422; 8 concurrent 16-Mpx uploads under
+1.5 GB and back within 300 MB of idle; with 100 slow-body connections open a normal sample
answers 200 within 1 s.
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from overload import _probe  # bench/ is on sys.path when this script runs
from PIL import Image
from service import start_server

ROOT = Path(__file__).resolve().parents[1]


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def attack(name: str, url: str, pid: int, fn) -> dict:
    """Runs ``fn`` (-> (status, bytes back)) with the liveness prober alongside."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = rss_mib(pid)
    stop, probes = threading.Event(), []
    prober = threading.Thread(target=_probe, args=(url, stop, probes))
    prober.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    status, size = fn()
    seconds = time.perf_counter() - t0
    time.sleep(0.2)
    stop.set()
    prober.join()
    time.sleep(1.0)
    return {
        "attack": name, "status": status, "seconds": seconds, "bytes": size,
        "worst_live_ms": max(probes) if probes else float("nan"),
        "rss_before": before, "rss_peak": rss_mib(pid, "VmHWM"), "rss_after": rss_mib(pid),
    }  # fmt: skip


def post_raw(url: str, path: str, raw: bytes):
    def fn():
        r = httpx.post(url + path, content=raw, timeout=120,
                       headers={"content-type": "application/json"})  # fmt: skip
        return r.status_code, len(r.content)

    return fn


def big_photo() -> bytes:
    img = Image.new("RGB", (4000, 4000), "white")
    img.paste((120, 80, 40), (1200, 900, 2800, 3100))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def uploads(url: str, n: int):
    photo = big_photo()

    def one(_: int) -> tuple[int, int]:
        r = httpx.post(f"{url}/v1/reconstruct", files={"image": ("p.png", photo, "image/png")},
                       data={"output": '{"format": "npy"}'}, timeout=300)  # fmt: skip
        return r.status_code, len(r.content)

    def fn():
        with ThreadPoolExecutor(n) as pool:
            got = list(pool.map(one, range(n)))
        return "/".join(sorted({str(s) for s, _ in got})), sum(b for _, b in got)

    return fn


def slow_bodies(url: str, n: int):
    host, port = url.removeprefix("http://").split(":")

    def fn():
        socks = []
        for _ in range(n):
            s = socket.create_connection((host, int(port)))
            s.sendall(b"POST /v1/sample HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                      b"\r\nContent-Length: 100\r\n\r\n{\"n\":")  # fmt: skip
            socks.append(s)
        time.sleep(0.5)
        t0 = time.perf_counter()
        r = httpx.post(f"{url}/v1/sample", json={"seeds": [1], "output": {"format": "npy"}},
                       timeout=60)  # fmt: skip
        print(f"  normal sample beside {n} slow bodies: {r.status_code} in "
              f"{time.perf_counter() - t0:.3f} s")  # fmt: skip
        for s in socks:
            s.close()
        return r.status_code, len(r.content)

    return fn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, default=ROOT / "models/gan3d-cpu")
    args = parser.parse_args()
    strings = b",".join([b'""'] * 3_495_172)
    ref: dict = {"seed": 7}
    for _ in range(3):
        ref = {"mean_of": [ref] * 32}
    wide = json.dumps({"terms": [{"weight": 1, "ref": ref}] * 16}).encode()
    leaves = {"mean_of": [{"mean_of": [{"seed": 7}] * 32}] * 32}
    amplify = {"n": 8, "seeds": list(range(8)), "temperature": 3,
               "output": {"format": "obj", "upsample": 4, "smooth_iterations": 0,
                          "min_part_fraction": 0, "join_level": 1, "threshold": 0.001}}  # fmt: skip
    import numpy as np

    keys = [{"latent": (np.random.default_rng(i).normal(size=200) * 3).tolist()} for i in range(8)]
    proc, url, _ = start_server(args.bundle)
    try:
        pid = proc.pid
        cases = [
            ("1. 3.5 M empty strings as a latent (10.5 MB)", post_raw(
                url, "/v1/arithmetic",
                b'{"terms":[{"weight":1,"ref":{"latent":[' + strings + b"]}}]}")),
            ("1. 690 k empty strings as a latent (2 MB)", post_raw(
                url, "/v1/arithmetic",
                b'{"terms":[{"weight":1,"ref":{"latent":[' + strings[: 2 * 2**20 - 64] + b"]}}]}")),
            ("1. 1 M numbers as a latent (2 MB)", post_raw(
                url, "/v1/edit", b'{"start":{"latent":[' + b",".join([b"0"] * 1_000_000)
                + b']},"edits":[{"direction":"x","amount":1}]}')),
            ("2. mean_of 16 x 32^3 leaves (6 MB)", post_raw(url, "/v1/arithmetic", wide)),
            ("2. mean_of 3 x 1024 leaves", post_raw(
                url, "/v1/arithmetic", json.dumps({"terms": [{"weight": 1, "ref": leaves}] * 3})
                .encode())),
            ("3. sample 8 obj upsample 4 threshold 0.001", post_raw(
                url, "/v1/sample", json.dumps(amplify).encode())),
            ("3. interpolate 8 keyframes x 9 steps, same output", post_raw(
                url, "/v1/interpolate", json.dumps({"keyframes": keys, "steps": 9,
                                                    "output": amplify["output"]}).encode())),
            ("4. 8 concurrent 16-Mpx PNG uploads", uploads(url, 8)),
            ("5. 100 slow bodies, then a normal sample", slow_bodies(url, 100)),
        ]  # fmt: skip
        rows = [attack(name, url, pid, fn) for name, fn in cases]
    finally:
        proc.terminate()
        proc.wait(30)
    print("| attack | status | s | bytes back | worst liveness ms | RSS MB before / peak / after |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['attack']} | {r['status']} | {r['seconds']:.2f} | {r['bytes']:,} | "
              f"{r['worst_live_ms']:.0f} | {r['rss_before']:.0f} / {r['rss_peak']:.0f} / "
              f"{r['rss_after']:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
