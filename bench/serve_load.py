"""Load on a running ``lrfer serve``: 200 concurrent ``POST /api/analyze`` and 100 dashboards on SSE.

Starts the service as its own process (SQLite, the demo camera running, as a deployment would be),
logs in, makes an integration token, then from this process opens 100 Server-Sent-Events streams
(the dashboards) and, while they listen, sends 200 photo analyses at once (``examples/far_scene.png``,
640x480, three faces). Reports the status codes (no 5xx is the goal), the analyses' latency (p50,
p99), the events each dashboard received, and whether the camera kept its 2 fps through it.

Writes ``bench/results/serve_load.json`` and the table in docs/serve.md (``--table-only``, ``--check``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from _common import DOCS, RESULTS, ROOT, load_result, provenance, write_blocks

OUT = RESULTS / "serve_load.json"
PHOTO = ROOT / "examples" / "far_scene.png"


def start_service(tmp: Path, port: int) -> tuple[subprocess.Popen, str]:
    """``lrfer serve --demo`` on ``port``; returns the process and the admin password it printed."""
    cmd = [sys.executable, "-c", "from lrfer.cli import main; raise SystemExit(main())", "serve", "--demo", "--data-dir", str(tmp / "demo"), "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    password = None
    for line in proc.stdout:
        m = re.search(r"password: (\S+)", line)
        password = m.group(1) if m else password
        if "lrfer serve: open" in line:
            return proc, password
    raise SystemExit("the service did not start")


def token(base: str, password: str) -> str:
    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post("/api/login", json={"username": "admin", "password": password})
        r.raise_for_status()
        r = c.post("/api/tokens", json={"name": "bench", "role": "integration"}, headers={"X-CSRF-Token": r.json()["csrf"]})
        r.raise_for_status()
        return r.json()["token"]


async def listen(client: httpx.AsyncClient, counts: list[int], i: int, stop: asyncio.Event, ready: list[int]) -> None:
    async with client.stream("GET", "/api/events") as r:
        if r.status_code != 200:
            counts[i] = -r.status_code
            return
        ready[0] += 1
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                counts[i] += 1
            if stop.is_set():
                return


async def analyse(client: httpx.AsyncClient, photo: bytes) -> tuple[int, float]:
    t = time.perf_counter()
    try:
        r = await client.post("/api/analyze", content=photo, headers={"Content-Type": "image/png"})
        return r.status_code, time.perf_counter() - t
    except httpx.HTTPError:
        return 0, time.perf_counter() - t


async def load(base: str, tok: str, n_analyze: int, n_sse: int) -> dict:
    headers = {"Authorization": f"Bearer {tok}"}
    limits = httpx.Limits(max_connections=n_analyze + n_sse + 10)
    photo = PHOTO.read_bytes()
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=httpx.Timeout(300.0)) as client:
        stop, counts, ready = asyncio.Event(), [0] * n_sse, [0]
        listeners = [asyncio.create_task(listen(client, counts, i, stop, ready)) for i in range(n_sse)]
        deadline = time.monotonic() + 30
        while ready[0] < n_sse and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        fps_before = (await client.get("/api/cameras/lounge/status")).json()["fps"]
        t0 = time.perf_counter()
        results = await asyncio.gather(*(analyse(client, photo) for _ in range(n_analyze)))
        wall = time.perf_counter() - t0
        status = (await client.get("/api/cameras/lounge/status")).json()
        await asyncio.sleep(2.0)  # let a status event or two reach every dashboard
        stop.set()
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
    codes: dict[str, int] = {}
    for code, _ in results:
        codes[str(code)] = codes.get(str(code), 0) + 1
    lat = np.array([t for c, t in results if c == 200])
    return {
        "analyze": {"requests": n_analyze, "codes": codes, "wall_s": round(wall, 2), "per_s": round(n_analyze / wall, 2),
                    "p50_s": round(float(np.percentile(lat, 50)), 3) if lat.size else None, "p99_s": round(float(np.percentile(lat, 99)), 3) if lat.size else None},
        "sse": {"clients": n_sse, "connected": ready[0], "events_min": min(counts), "events_median": int(np.median(counts))},
        "camera_fps_before": fps_before, "camera_fps_after": status["fps"], "camera_state_after": status["state"],
        "server_5xx": sum(v for k, v in codes.items() if k.startswith("5")),
    }


def table(r: dict) -> list[str]:
    a, s = r["analyze"], r["sse"]
    lines = ["| load | result |", "|---|---|",
             f"| {a['requests']} concurrent `POST /api/analyze` (640x480, 3 faces) | status codes {a['codes']}; p50 {a['p50_s']:.2f} s, p99 {a['p99_s']:.2f} s; {a['per_s']:.1f} photos/s |",
             f"| {s['clients']} dashboards on SSE, at the same time | {s['connected']} connected; events per dashboard: min {s['events_min']}, median {s['events_median']} |",
             f"| the camera meanwhile | {r['camera_fps_before']:.2f} fps before, {r['camera_fps_after']:.2f} after, {r['camera_state_after']} |"]
    p = r["provenance"]
    note = f"5xx answers: {r['server_5xx']}. From `bench/serve_load.py`, {p['machine']}, {p['date'][:10]}, commit `{p['commit'][:7]}`; results in `bench/results/serve_load.json`."
    return ["\n".join(lines), note]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--analyze", type=int, default=200)
    ap.add_argument("--sse", type=int, default=100)
    ap.add_argument("--port", type=int, default=8791)
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if not (args.table_only or args.check):
        prov = provenance("bench/serve_load.py", machine=f"{platform.node()} {platform.machine()}, {len(os.sched_getaffinity(0))} cores")
        with tempfile.TemporaryDirectory() as tmp:
            proc, password = start_service(Path(tmp), args.port)
            try:
                base = f"http://127.0.0.1:{args.port}"
                time.sleep(5)  # the camera reaches its pace
                result = asyncio.run(load(base, token(base, password), args.analyze, args.sse))
            finally:
                proc.terminate()
                proc.wait(30)
        OUT.write_text(json.dumps({"provenance": prov, **result}, indent=2) + "\n")
        print(json.dumps(result, indent=1))
    write_blocks(DOCS / "serve.md", {"serve-load": table(load_result("serve_load.json"))}, check=args.check)


if __name__ == "__main__":
    main()
