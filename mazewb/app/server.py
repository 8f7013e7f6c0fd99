"""Create and serve the workbench's Dash app.

``create_app(checkpoint)`` builds a fresh app with its own ``Workbench`` (loaded policies and
result caches, keyed by content, safe to share) and no other state: everything a user sees
lives in their own page (stores and the URL). ``serve`` runs it on waitress, a production WSGI
server: one process (the loaded policies, the result caches and the background jobs live in
it, so it must stay one process), many threads, so long analyses do not hold up other users.

A server that listens beyond this machine (a non-loopback ``host``) refuses to load checkpoints
by their path on the server (from the Model tab or a link) unless ``allow_path_loading`` is set
(``mazewb serve --allow-path-loading``); uploads (size-limited, validated) are always accepted.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Sequence
from pathlib import Path

from dash import Dash, Input, Output

from mazewb.app import dispatch, ids
from mazewb.app.compute import Workbench
from mazewb.app.layout import load_panels, page
from mazewb.app.panel import PageConfig
from mazewb.app.style import CSS
from mazewb.lessons.library import lesson_library

log = logging.getLogger("mazewb.app")
THREADS = 8

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
    panels: Sequence[str] | None = None,
    lessons: Sequence[str | Path] = (),
    zoo: str | None = None,
) -> Dash:
    """A new workbench app; ``checkpoint`` is the agent shown by default (None: the bundled one).

    ``host``: the address the app will be served on. Off this machine (not loopback), loading
    checkpoints by server path is refused unless ``allow_path_loading``; this setting also
    applies to a ``workbench`` passed in. ``panels``: the panel modules to show (default: the
    registry, ``mazewb.app.panels.PANELS``). ``lessons``: folders of lesson files offered besides the
    built-in lessons (``mazewb serve --lessons DIR``); an invalid file raises ``LessonError``."""
    _import_lazy_modules()
    paths = allow_path_loading or is_loopback(host)
    wb = workbench or Workbench(checkpoint, allow_paths=paths)
    wb.registry.allow_paths = paths
    if lessons:  # lesson folders besides the built-in lessons; an invalid file stops here (LessonError)
        wb.lessons = lesson_library(lessons)  # type: ignore[attr-defined]
    if zoo is not None:  # the zoo's folder (default: checkpoints/zoo beside the bundled agent)
        from mazewb.app.zoo import Zoo

        wb.registry.zoo = Zoo(zoo, wb.registry.default_path)
    app = Dash(
        __name__,
        title="mazewb",
        update_title=None,
        index_string=INDEX,
        suppress_callback_exceptions=False,
        assets_folder="assets_unused",
    )
    panels = load_panels() if panels is None else load_panels(panels)
    app.layout = page(panels, config=PageConfig(path_loading=paths))
    dispatch.register(app, wb, panels)
    for panel in panels:
        if panel.register is not None:
            panel.register(app, wb)
    _client_callbacks(app)
    _json_errors(app)
    app.server.config["MAX_CONTENT_LENGTH"] = 100 * 2**20  # uploads are limited again, per kind
    app.workbench = wb  # type: ignore[attr-defined]
    return app


def _client_callbacks(app: Dash) -> None:
    """Figure export and the share link: done in the browser."""
    app.clientside_callback(
        """
        function(n1, n2) {
            const trig = (window.dash_clientside.callback_context.triggered[0] || {}).prop_id || "";
            if (!trig.startsWith("export-")) { return window.dash_clientside.no_update; }
            const format = trig.startsWith("export-svg") ? "svg" : "png";
            const graphs = Array.from(document.querySelectorAll(".js-plotly-plot"))
                .filter(g => g.offsetParent !== null);
            graphs.forEach((gd, i) => {
                const holder = gd.closest("[id]");
                const name = "mazewb-" + ((holder && holder.id) || ("figure" + i));
                Plotly.downloadImage(gd, {format: format, filename: name, scale: format === "png" ? 2 : 1});
            });
            return "exported " + graphs.length + " figure(s) as " + format;
        }
        """,
        Output(ids.EXPORT_DUMMY, "children"),
        Input(ids.EXPORT_PNG, "n_clicks"),
        Input(ids.EXPORT_SVG, "n_clicks"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        """
        function(search) { return window.location.origin + window.location.pathname + (search || ""); }
        """,
        Output(ids.SHARE_URL, "children"),
        Input(ids.URL, "search"),
    )


def _json_errors(app: Dash) -> None:
    """A request that fails outside every callback's guard (a malformed Dash envelope, say) gets
    a short JSON error, never a traceback; the traceback goes to the log."""
    from flask import jsonify
    from werkzeug.exceptions import HTTPException

    @app.server.errorhandler(Exception)
    def _error(exc: Exception):  # noqa: ANN202
        if isinstance(exc, HTTPException):
            return jsonify(error=exc.name), exc.code
        if isinstance(exc, KeyError) and "Callback function not found" in str(exc):
            return jsonify(error="no such callback"), 400
        log.error("internal error serving a request", exc_info=exc)
        return jsonify(error="internal error"), 500


def serve(
    host: str = "127.0.0.1",
    port: int = 8050,
    checkpoint: str | None = None,
    debug: bool = False,
    allow_path_loading: bool = False,
    lessons: Sequence[str | Path] = (),
    zoo: str | None = None,
) -> None:
    """Run the workbench on waitress (one process, ``THREADS`` threads) until interrupted;
    ``debug``: Dash's development server with its debugger instead (never on a network)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(
        checkpoint, host=host, allow_path_loading=allow_path_loading, lessons=lessons, zoo=zoo
    )
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
    if debug:
        app.run(host=host, port=port, debug=True, threaded=True)
        return
    import waitress

    print(f"mazewb: serving with waitress ({THREADS} threads, one process)")
    waitress.serve(app.server, host=host, port=port, threads=THREADS, ident="mazewb", channel_timeout=120)
