"""Component and store ids shared between modules, declared once.

Ids used by one panel only are constants at the top of that panel's module; the ids of the
view-state controls are in the view-state table (``mazewb.app.state.FIELDS``).
"""

from __future__ import annotations

URL = "url"
VIEW = "st-view"  # the whole view state (validated on every read)
TYPED = "st-typed"  # what a text / number box holds when Enter is pressed (see mazewb.app.dispatch)
NOTICE = "notice"  # the message line under the top bar
TABS = "tabs"  # the dcc.Tabs of the right column (also the 'tab' field's control)
MAZE_GRAPH = "maze-graph"  # the clickable maze (maze panel)
CLICK_MODE = "click-mode"  # what a click on a maze does (cheese / mouse / wall / target)
SHARE_URL = "share-url"
MODEL_BADGE = "model-badge"
DEVICE_BADGE = "device-badge"
REGION_BADGE = "region-badge"
UNTRAINED_BANNER = "untrained-banner"
EXPORT_PNG = "export-png"
EXPORT_SVG = "export-svg"
EXPORT_DUMMY = "export-dummy"


def slice_store(panel: str) -> str:
    """The store holding the view-state fields one panel reads (written by the view-state callback)."""
    return f"st-{panel}"


def key_store(name: str) -> str:
    """The store remembering what a lazy view last drew (so it redraws only on change)."""
    return f"key-{name}"


def message(name: str) -> str:
    """The message line of a panel or section."""
    return f"{name}-message"


def job(kind: str, part: str) -> str:
    """An element of a background-job section: run, cancel, bar, status, job, poll."""
    return f"{kind}-{part}"
