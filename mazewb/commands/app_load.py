"""``mazewb load-test``: a bounded load test of the web app, as a command (not a timed test).

Serves the app in this process under waitress on a free loopback port (or targets ``--url``),
then runs ``--sessions`` simulated browsers at once, each for ``--rounds`` rounds of what a user
does, sent as Dash sends it (``POST /_dash-update-component``): open a link, draw the Behaviour
tab, click the maze to move the cheese, draw again, and one crafted request (a forged page
state) that must be refused politely. Prints the number of requests, errors (any HTTP status
other than 200/204, or an "internal error" in a reply), latency percentiles, and the server's
memory before and after (in-process only).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
import urllib.request
from typing import Any

from mazewb.app.wire import update_body
from mazewb.cli import command
from mazewb.errors import ConfigError

MAX_SESSIONS, MAX_ROUNDS = 64, 200


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sessions", type=int, default=8, help=f"simulated browsers at once (default 8, at most {MAX_SESSIONS})"
    )
    p.add_argument("--rounds", type=int, default=5, help=f"rounds per session (default 5, at most {MAX_ROUNDS})")
    p.add_argument("--seeds", default="0:20", help="levels the sessions pick from, START:STOP (default 0:20)")
    p.add_argument("--url", default=None, help="test a running server instead (e.g. http://127.0.0.1:8050)")
    p.add_argument("--checkpoint", default=None, help="policy checkpoint of the in-process server (default: bundled)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request (default 120)")


def _rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Client:
    """Posts Dash callback requests built from the server's ``/_dash-dependencies``."""

    def __init__(self, base: str, timeout: float) -> None:
        self.base, self.timeout = base.rstrip("/"), timeout
        with urllib.request.urlopen(self.base + "/_dash-dependencies", timeout=timeout) as r:
            self.deps = json.loads(r.read())

    def spec(self, output: str) -> dict:
        for d in self.deps:
            if output in d["output"].strip(".").split("..."):
                return d
        raise ConfigError(f"the server has no callback writing {output}")

    def call(self, output: str, trigger: str, values: dict[str, Any]) -> tuple[int, Any, float]:
        d = self.spec(output)
        body = update_body(d["output"], d["inputs"], d["state"], trigger, values)
        req = urllib.request.Request(
            self.base + "/_dash-update-component",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        t = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read()
        except OSError:
            status, text = 0, b""
        took = time.perf_counter() - t
        try:
            reply = json.loads(text).get("response") if text else None
        except ValueError:
            reply = None
        return status, reply, took


def _session(client: Client, seeds: range, rounds: int, rng: random.Random, out: dict) -> None:
    def record(status: int, reply: Any, took: float, what: str) -> Any:
        out["latency"].append(took)
        text = json.dumps(reply) if reply is not None else ""
        if status not in (200, 204) or "Internal error" in text or "internal error" in text:
            out["errors"].append(f"{what}: HTTP {status} {text[:160]}")
        return reply or {}

    for _ in range(rounds):
        seed = rng.choice(seeds)
        reply = record(*client.call("st-view.data", "url.search", {"url.search": f"?seed={seed}"}), "open a link")
        view = reply.get("st-view", {}).get("data")
        beh = reply.get("st-behaviour", {}).get("data")
        if beh is not None:
            record(*client.call("vf-graph.figure", "st-behaviour.data",
                                {"st-behaviour.data": beh, "tabs.value": "behaviour"}), "draw behaviour")  # fmt: skip
        click = {"points": [{"x": rng.uniform(0, 512), "y": rng.uniform(0, 512)}]}
        values = {"maze-graph.clickData": click, "click-mode.value": "cheese", "st-view.data": view, "url.search": ""}
        reply = record(*client.call("st-view.data", "maze-graph.clickData", values), "click the maze")
        beh = reply.get("st-behaviour", {}).get("data")
        if beh is not None:
            record(*client.call("vf-graph.figure", "st-behaviour.data",
                                {"st-behaviour.data": beh, "tabs.value": "behaviour"}), "draw again")  # fmt: skip
        forged = {"seed-next.n_clicks": 1, "st-view.data": {"seed": "abc", "walls": [[100, 100]]}}
        reply = record(*client.call("st-view.data", "seed-next.n_clicks", forged), "forged state")
        if "not understood" not in json.dumps(reply):
            out["errors"].append("forged state: not refused")


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


@command("load-test", "a bounded load test of the web app: sessions at once, errors, latency, memory")(_configure)
def _run(args: argparse.Namespace) -> int:
    if not 1 <= args.sessions <= MAX_SESSIONS or not 1 <= args.rounds <= MAX_ROUNDS:
        raise ConfigError(f"--sessions must be 1..{MAX_SESSIONS} and --rounds 1..{MAX_ROUNDS}")
    try:
        lo, hi = (int(x) for x in args.seeds.split(":"))
        seeds = range(lo, hi)
        if not 0 <= lo < hi <= 2**31 - 1:
            raise ValueError
    except ValueError:
        raise ConfigError(f"--seeds must be START:STOP with 0 <= START < STOP, got {args.seeds!r}") from None
    server = app = None
    base = args.url
    if base is None:
        import logging

        from waitress.server import create_server

        from mazewb.app.server import THREADS, create_app

        logging.getLogger("waitress").setLevel(logging.ERROR)
        app = create_app(args.checkpoint)
        server = create_server(app.server, host="127.0.0.1", port=0, threads=THREADS)
        threading.Thread(target=server.run, daemon=True).start()
        base = f"http://127.0.0.1:{server.effective_port}"
    try:
        client = Client(base, args.timeout)
        rss0 = _rss_mb() if server is not None else float("nan")
        results: list[dict] = [{"latency": [], "errors": []} for _ in range(args.sessions)]
        threads = [
            threading.Thread(target=_session, args=(client, seeds, args.rounds, random.Random(k), results[k]))
            for k in range(args.sessions)
        ]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        rss1 = _rss_mb() if server is not None else float("nan")
    finally:
        if server is not None:
            server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
            server.close()
    latency = [x for r in results for x in r["latency"]]
    errors = [e for r in results for e in r["errors"]]
    print(f"load test: {args.sessions} sessions x {args.rounds} rounds against {base}, {wall:.1f} s")
    print(f"requests: {len(latency)}  errors: {len(errors)}  throughput: {len(latency) / wall:.1f} requests/s")
    print(
        "latency (s): p50 {:.3f}  p90 {:.3f}  p99 {:.3f}  max {:.3f}  mean {:.3f}".format(
            _percentile(latency, 0.5),
            _percentile(latency, 0.9),
            _percentile(latency, 0.99),
            max(latency, default=float("nan")),
            statistics.fmean(latency) if latency else float("nan"),
        )
    )
    if server is not None:
        print(f"server memory (RSS): {rss0:.0f} MB before, {rss1:.0f} MB after, growth {rss1 - rss0:+.0f} MB")
        wb = app.workbench  # type: ignore[union-attr]
        print(
            f"result caches: {wb.cache.nbytes / 2**20:.0f} MB of at most {wb.cache.max_bytes / 2**20:.0f} MB, "
            f"images {wb.images.nbytes / 2**20:.0f} MB of at most {wb.images.max_bytes / 2**20:.0f} MB "
            "(the growth above is these plus torch's and procgen's working memory)"
        )
    for e in errors[:20]:
        print("  error:", e)
    return 1 if errors else 0
