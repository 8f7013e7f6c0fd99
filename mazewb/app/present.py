"""How the app shows the library's results: app styling of ``mazewb.plots`` figures and small
HTML tables. No science here: every number comes from ``mazewb.analysis``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from dash import html

from mazewb import analysis as an
from mazewb import plots
from mazewb.analysis.spec import SteerSpec
from mazewb.app.figures import FONT

MARKER_NAMES = {"cheese", "top-right square", "decision square", "mouse", plots.TARGET_NAME}


def _is_marker(trace) -> bool:  # noqa: ANN001
    name = trace.name or ""
    return name in MARKER_NAMES or name.startswith(plots.REGION_NAME)


def present(fig, height: int, maze: bool = True, legend: bool = True):  # noqa: ANN001, ANN201
    """App styling of a ``mazewb.plots`` figure: size, large type, room for the modebar above
    the picture; for maze figures no axes and a legend of the markers only."""
    hidden = dict(visible=False, fixedrange=True)
    layout: dict[str, Any] = dict(
        height=height,
        width=None,
        font=FONT,
        title=dict(font=dict(size=17), x=0.5, xanchor="center"),
        margin=dict(l=10, r=10, t=48, b=40 if maze and legend else 10),
        paper_bgcolor="white",
        plot_bgcolor="white",
        dragmode=False,
    )
    if maze:
        if legend:
            layout["legend"] = dict(orientation="h", y=-0.02, yanchor="top", x=0.5, xanchor="center")
        for trace in fig.data:
            trace.showlegend = legend and _is_marker(trace)
        if _has_subplots(fig):
            fig.update_xaxes(**hidden)
            fig.update_yaxes(**hidden)
        else:
            layout.update(xaxis=hidden, yaxis=hidden)
    fig.update_layout(**layout)  # one call: each update_* call costs plotly a full relayout pass
    compact(fig)
    return fig


def _has_subplots(fig) -> bool:  # noqa: ANN001
    """More than one x axis (make_subplots): then every axis is styled, not only the first."""
    return len(list(fig.select_xaxes())) > 1


def compact(fig) -> None:  # noqa: ANN001
    """Long line traces (arrows: NaN- or None-broken coordinates) as float32 arrays with NaN breaks,
    which plotly sends as base64 typed arrays: about half the bytes of JSON number lists, and the
    same picture (NaN breaks a line like None)."""
    for trace in fig.data:
        if trace.type != "scatter" or trace.x is None or len(trace.x) < 200:
            continue
        for axis in ("x", "y"):
            values = getattr(trace, axis)
            if isinstance(values, np.ndarray) and values.dtype != np.float32:
                setattr(trace, axis, values.astype(np.float32))
            elif isinstance(values, tuple | list):
                setattr(trace, axis, np.array([np.nan if v is None else v for v in values], dtype=np.float32))


def per_square(field: an.VectorField, values: np.ndarray) -> np.ndarray:
    """(size, size) grid ``[row, col]`` of values given per square of the field (NaN elsewhere)."""
    size = field.maze.size
    grid = np.full((size, size), np.nan)
    grid[field.cells[:, 0], field.cells[:, 1]] = values
    return grid


def _signed(x: float, digits: int = 3) -> str:
    """A change with its sign; one that rounds to zero is shown as +0.000 (never −0.000)."""
    x = round(x, digits)
    return ("−" if x < 0 else "+") + f"{abs(x):.{digits}f}"


def outcomes_table(results: Mapping[str, an.ExactOutcomes], extra: Mapping[str, list[float]] | None = None) -> html.Div:
    """The four mutually exclusive outcomes (``analysis.outcome_table``: rows that add up to 1,
    with a total row) for one or more results, a "change" column when there are two, the
    summaries P(reach the cheese) and expected steps, any ``extra`` rows (label -> one value per
    result), and ``OUTCOME_DEFINITION`` in words under the table."""
    table = an.outcome_table(dict(results))
    names = list(table.columns)
    two = len(names) == 2
    head = ["", *names] + (["change"] if two else [])
    rows = [html.Tr([html.Th(h) for h in head])]
    for label, values in table.iterrows():
        vals = [float(v) for v in values]
        cells = [html.Td(html.B(label) if label == "total" else label)] + [html.Td(f"{v:.3f}") for v in vals]
        if two:
            cells.append(html.Td(_signed(vals[1] - vals[0])))
        rows.append(html.Tr(cells, className="total" if label == "total" else None))
    summary: list[tuple[str, list[float], str]] = [
        ("P(reach the cheese) = first + second row", [r.p_cheese for r in results.values()], "{:.3f}"),
        ("expected steps", [r.expected_steps for r in results.values()], "{:.1f}"),
    ]
    for label, vals in (extra or {}).items():
        summary.insert(1, (label, vals, "{:.3f}"))
    for label, vals, fmt in summary:
        cells = [html.Td(label)] + [html.Td(fmt.format(v)) for v in vals]
        if two:
            d = vals[1] - vals[0]
            cells.append(html.Td(_signed(d, 3 if fmt == "{:.3f}" else 1)))
        rows.append(html.Tr(cells, className="summary"))
    return html.Div(
        [html.Table(rows, className="outcomes"), html.P(an.OUTCOME_DEFINITION, className="hint definition")]
    )


def decision_p_cheese(field: an.VectorField, ds: tuple[int, int]) -> float:
    """P(the step towards the cheese) at the decision square ``ds`` under ``field``."""
    return float(an.step_probabilities(field, field.maze.cheese)[field.index(ds)])


def describe(spec: SteerSpec) -> str:
    parts = []
    if spec.cheese_coeff:
        src = "this maze" if spec.cheese_source is None else f"seed {spec.cheese_source}"
        parts.append(f"cheese vector × {spec.cheese_coeff:g} (from {src})")
    if spec.top_right_coeff:
        src = "this maze" if spec.top_right_source is None else f"seed {spec.top_right_source}"
        parts.append(f"top-right vector × {spec.top_right_coeff:g} (from {src})")
    if spec.retarget_square is not None and spec.retarget_channels:
        parts.append(
            f"channels {list(spec.retarget_channels)} set to {spec.retarget_value:g} at {spec.retarget_square}"
        )
    if spec.ablate_channels:
        parts.append(f"{spec.ablate_mode}-ablation of channels {list(spec.ablate_channels)}")
    if spec.resample_channels:
        parts.append(f"channels {list(spec.resample_channels)} resampled from seed {spec.resample_source}")
    return "; ".join(parts) + f" at {spec.layer.replace('embedder.', '')}"


def channel_grid(maps: np.ndarray, selected: int) -> Any:
    """``plots.channel_grid_figure`` in a near-square layout, with the selected channel framed and
    hover / click reporting the channel under the pointer (``customdata``)."""
    c, h, w = maps.shape
    columns = int(math.ceil(math.sqrt(c)))
    fig = plots.channel_grid_figure(
        maps, columns=columns, title=f"all {c} channels, each scaled to its own range (click one)"
    )
    gap = 1
    chan = np.full(np.shape(fig.data[0].z), -1)
    for k in range(c):
        r, q = divmod(k, columns)
        chan[r * (h + gap) : r * (h + gap) + h + gap, q * (w + gap) : q * (w + gap) + w + gap] = k
    fig.data[0].update(
        customdata=chan, hoverinfo="z", hovertemplate="channel %{customdata}<extra></extra>", showscale=False
    )
    r, q = divmod(selected, columns)
    fig.add_shape(
        type="rect",
        x0=q * (w + gap) - 0.5,
        y0=r * (h + gap) - 0.5,
        x1=q * (w + gap) + w - 0.5,
        y1=r * (h + gap) + h - 0.5,
        line=dict(color="#111", width=3),
    )
    fig = present(fig, 540, maze=False)
    fig.update_xaxes(fixedrange=True)
    fig.update_yaxes(fixedrange=True)
    return fig
