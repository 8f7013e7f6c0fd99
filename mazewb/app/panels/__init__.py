"""The panels of the page, one module each in this folder (its layout, its events, its callbacks).

To add a panel: write ``mazewb/app/panels/NAME.py`` defining ``PANEL = Panel(...)`` (see
``mazewb.app.panel`` and docs/app.md) and add ``"NAME"`` to ``PANELS`` below. That is all: the
page, the tab list, the URL's ``tab=`` values, the view-state callback and the panel's stores
are all built from this list. This module is plain data (no imports), so the view-state table
can read the tab names without importing Dash.
"""

PANELS: tuple[str, ...] = (
    "maze",  # the left column: always shown, not a tab
    "lesson",  # a lesson played step by step (mazewb/lessons)
    "behaviour",
    "activations",
    "steer",
    "shards",
    "stats",
    "model",
    "compare",
)
"""Panel modules in page order; every one but the first ("maze", the left column) is a tab
whose value (in the URL: ``tab=NAME``) is its module name."""

TABS: tuple[str, ...] = PANELS[1:]
