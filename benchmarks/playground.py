"""How fluid the playground can be: updates per second of "N training steps + one redraw's data".

One update is what the page's training loop asks of the server per frame:
N mini-batch steps in the C++ core, then the snapshot a redraw needs (the
weights, both losses, the model's output over the 40x40 grid, the gradient
norms) encoded as JSON. Measured on a 2-8-8-1 tanh network with 500 points
(250 train, 250 test), batch size 10, two ways:

- direct: ``Session.step(N)`` and ``json.dumps`` in this process;
- HTTP: ``POST /api/sessions/<id>/step`` with urllib against a local
  :class:`~pybackprop.playground.server.PlaygroundServer` (a new connection per
  request, as urllib does; the page's fetch keeps its connection alive, so the
  browser does a little better).

With ``--browser`` (Selenium and Debian's chromium + chromium-driver), the page
itself is measured too: redraws per second of its training loop in headless
Chromium, at its default N (one epoch per redraw, 25 steps here). The page
needs >= 20 redraws per second to look fluid.

    python benchmarks/playground.py                 # N = 1, 5, 25 (one epoch), 100; 3 s each
    python benchmarks/playground.py --steps 25 --seconds 10 --browser
"""
from __future__ import annotations

import argparse
import json
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from pybackprop.playground.server import PlaygroundServer
from pybackprop.playground.session import Config, Session, SessionStore

CONFIG: Dict[str, Any] = {"dataset": "xor", "samples": 500, "train_fraction": 0.5, "layers": [8, 8],
          "activations": ["tanh", "tanh"], "lr": 0.03, "batch_size": 10, "seed": 0}


def rate(update: Callable[[], int], seconds: float) -> tuple:
    """(updates per second, mean bytes per update) of ``update`` run for ``seconds``."""
    update()  # warm up
    count, size = 0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        size += update()
        count += 1
    elapsed = time.perf_counter() - start
    return count / elapsed, size / count


def direct(steps: int) -> Callable[[], int]:
    session = Session(Config(**CONFIG))

    def update() -> int:
        return len(json.dumps(session.step(steps), separators=(",", ":")))
    return update


def over_http(url: str, steps: int) -> Callable[[], int]:
    body = json.dumps({"config": CONFIG}).encode()
    with urllib.request.urlopen(urllib.request.Request(url + "api/sessions", body)) as res:
        sid = json.load(res)["session"]
    request = json.dumps({"steps": steps}).encode()

    def update() -> int:
        req = urllib.request.Request(f"{url}api/sessions/{sid}/step", request,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as res:
            data = res.read()
        json.loads(data)  # the page parses it too
        return len(data)
    return update


def in_browser(url: str, seconds: float) -> float:
    """Redraws per second of the page's own training loop in headless Chromium (its default N)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        hash_ = "#" + "&".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in CONFIG.items())
        driver.get(url + hash_)
        end = time.monotonic() + 30
        while not driver.execute_script("return document.body.dataset.ready === 'true'"):
            if time.monotonic() > end:
                raise RuntimeError("the page did not load")
            time.sleep(0.05)
        driver.find_element("id", "play").click()
        time.sleep(0.5)
        f0, t0 = driver.execute_script("return window.PBPlayground.frames"), time.perf_counter()
        time.sleep(seconds)
        f1, t1 = driver.execute_script("return window.PBPlayground.frames"), time.perf_counter()
        return (f1 - f0) / (t1 - t0)
    finally:
        driver.quit()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="*", default=[1, 5, 25, 100], help="N: steps per update")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--browser", action="store_true", help="also measure the page in headless Chromium")
    parser.add_argument("--assets", type=Path, action="append", default=[],
                        help="a folder searched first for the page's assets (e.g. a development network.js)")
    args = parser.parse_args(argv)
    server = PlaygroundServer(port=0, store=SessionStore(), asset_folders=args.assets)
    server.serve_in_thread(poll_interval=0.05)
    try:
        print("2-8-8-1 tanh, 500 points (250 train), batch 10: updates/s of N steps + one redraw's JSON")
        print(f"{'N':>5s} {'direct /s':>10s} {'HTTP /s':>9s} {'steps/s (HTTP)':>15s} {'KB/update':>10s}")
        for n in args.steps:
            d, size = rate(direct(n), args.seconds)
            h, _ = rate(over_http(server.url, n), args.seconds)
            print(f"{n:5d} {d:10.0f} {h:9.0f} {h * n:15.0f} {size / 1024:10.1f}")
        if args.browser:
            fps = in_browser(server.url, max(args.seconds, 5.0))
            print(f"the page in headless Chromium (N = 25, one epoch per redraw): {fps:.0f} redraws/s, "
                  f"{fps * 25:.0f} steps/s")
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
