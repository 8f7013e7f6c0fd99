"""Create and serve the workbench's Dash app.

``create_app(checkpoint)`` builds a fresh app with its own ``Workbench`` (loaded policies and
result caches, keyed by content, safe to share) and no other state: everything a user sees
lives in their own page (stores and the URL). ``serve`` runs it on Werkzeug's threaded server,
so each request has its own thread and long analyses do not hold up other users.

A server that listens beyond this machine (a non-loopback ``host``) refuses to load checkpoints
by their path on the server (from the Model tab or a link) unless ``allow_path_loading`` is set
(``mazewb serve --allow-path-loading``); uploads (size-limited, validated) are always accepted.
"""

from __future__ import annotations

import ipaddress
import logging
import socket

from dash import Dash

from mazewb.app.callbacks import register
from mazewb.app.compute import Workbench
from mazewb.app.layout import page
from mazewb.app.style import CSS

INDEX = (
    """<!DOCTYPE html>
<html>
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
        <style>"""
    + CSS
    + """</style>
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""
)


def _import_lazy_modules() -> None:
    """Import what plotly, dash and the analysis layer import lazily on first use, before the
    threaded server starts: two request threads importing the same module for the first time
    can see it half-initialized (seen with PIL.Image inside plotly's JSON encoder)."""
    import importlib

    for name in ("PIL.Image", "pandas", "sklearn.linear_model", "plotly.io._json", "plotly.subplots"):
        try:
            importlib.import_module(name)
        except ImportError:  # pragma: no cover - optional for plotly
            pass


def is_loopback(host: str) -> bool:
    """True when ``host`` (an address or a name) means this machine only: every address it
    resolves to is a loopback address. Wildcards ('0.0.0.0', '::', '') and names that do not
    resolve count as reachable from elsewhere."""
    host = host.strip().strip("[]")
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0].split("%")[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def create_app(
    checkpoint: str | None = None,
    workbench: Workbench | None = None,
    *,
    host: str = "127.0.0.1",
    allow_path_loading: bool = False,
) -> Dash:
    """A new workbench app; ``checkpoint`` is the agent shown by default (None: the bundled one).

    ``host``: the address the app will be served on. Off this machine (not loopback), loading
    checkpoints by server path is refused unless ``allow_path_loading``; this setting also
    applies to a ``workbench`` passed in."""
    _import_lazy_modules()
    paths = allow_path_loading or is_loopback(host)
    wb = workbench or Workbench(checkpoint, allow_paths=paths)
    wb.registry.allow_paths = paths
    app = Dash(
        __name__,
        title="mazewb",
        update_title=None,
        index_string=INDEX,
        suppress_callback_exceptions=False,
        assets_folder="assets_unused",
    )
    app.layout = page(path_loading=paths)
    register(app, wb)
    app.server.config["MAX_CONTENT_LENGTH"] = 100 * 2**20  # uploads are limited again, per kind
    app.workbench = wb  # type: ignore[attr-defined]
    return app


def serve(
    host: str = "127.0.0.1",
    port: int = 8050,
    checkpoint: str | None = None,
    debug: bool = False,
    allow_path_loading: bool = False,
) -> None:
    """Run the workbench (threaded) until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(checkpoint, host=host, allow_path_loading=allow_path_loading)
    wb = app.workbench  # type: ignore[attr-defined]
    if not wb.registry.allow_paths:
        print(
            f"mazewb: {host} is reachable from other machines, so loading checkpoints by server path is "
            "switched off (uploads still work); --allow-path-loading switches it on"
        )
    elif not is_loopback(host):
        print(f"mazewb: warning: anyone who can reach {host}:{port} can load any checkpoint file this user can read")
    try:
        lp = wb.policy("default")
        note = " (UNTRAINED placeholder)" if lp.untrained else ""
        print(f"mazewb: agent {lp.label}{note} on {lp.device}")
    except Exception as exc:  # noqa: BLE001 - the page explains it too
        print(f"mazewb: the default checkpoint could not be loaded: {exc}")
    print(f"mazewb: open http://{host}:{port}/")
    app.run(host=host, port=port, debug=debug, threaded=True)
