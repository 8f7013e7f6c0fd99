"""Plotly figures for every analysis view; each function returns a ``go.Figure`` and works the
same in Jupyter, the web app and exported reports.

Maze figures use maze squares as data coordinates: x = column, y = row, row 0 at the bottom
(so the picture is the right way up), one unit per square. Activation maps use their own cell
coordinates, row 0 at the top like the image.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mazewb.analysis.activations import square_values
from mazewb.analysis.attribution import Attribution
from mazewb.analysis.chain import OUTCOME_DEFINITION, OUTCOME_EVENTS, ExactOutcomes
from mazewb.analysis.outcomes import outcome_table
from mazewb.analysis.rollouts import Trajectory
from mazewb.analysis.stats import GLOSSARY, BehaviourStats
from mazewb.analysis.steering import RetargetingMap
from mazewb.analysis.vfield import VectorField, VectorFieldDiff
from mazewb.errors import MazeError
from mazewb.maze.geometry import Square, square_to_cell, top_right_region_span
from mazewb.maze.graph import decision_square
from mazewb.maze.grid import Maze
from mazewb.policy import MOVES

WALL_COLOUR = "#3b3b4f"
OPEN_COLOUR = "#f4f1e8"
CHEESE_COLOUR = "#f2c12e"
MOUSE_COLOUR = "#7a6a5a"
ARROW_COLOUR = "#1f4e99"
REGION_COLOUR = "#d35400"
TARGET_COLOUR = "#2e8b57"
OUTCOME_COLOURS = ("#f2c12e", "#8fbc5a", "#c0392b", "#95a5a6")  # in OUTCOME_EVENTS order
REGION_NAME = "training cheese region"
TARGET_NAME = "retarget square"
_DIRECTIONS = {"LEFT": (-1.0, 0.0), "DOWN": (0.0, -1.0), "UP": (0.0, 1.0), "RIGHT": (1.0, 0.0)}


# --- the maze itself ----------------------------------------------------------------------------------


def _walls_trace(maze: Maze) -> go.Heatmap:
    walls = np.array(maze.walls, dtype=float)  # [row, col], row 0 at the bottom
    return go.Heatmap(
        z=walls,
        x=np.arange(maze.size),
        y=np.arange(maze.size),
        colorscale=[[0.0, OPEN_COLOUR], [1.0, WALL_COLOUR]],
        zmin=0,
        zmax=1,
        showscale=False,
        hoverinfo="skip",
    )


def _markers(maze: Maze, show_mouse: bool = True) -> list[go.Scatter]:
    traces = []
    if maze.cheese is not None:
        traces.append(
            go.Scatter(
                x=[maze.cheese[1]],
                y=[maze.cheese[0]],
                mode="markers",
                name="cheese",
                marker={
                    "symbol": "diamond",
                    "size": 12,
                    "color": CHEESE_COLOUR,
                    "line": {"width": 1, "color": "black"},
                },
            )
        )
    corner = maze.top_right
    traces.append(
        go.Scatter(
            x=[corner[1]],
            y=[corner[0]],
            mode="markers",
            name="top-right square",
            marker={"symbol": "star-open", "size": 12, "color": "#c0392b"},
        )
    )
    ds = decision_square(maze)
    if ds is not None:
        traces.append(
            go.Scatter(
                x=[ds[1]],
                y=[ds[0]],
                mode="markers",
                name="decision square",
                marker={"symbol": "square-open", "size": 14, "color": "#8e44ad", "line": {"width": 2}},
            )
        )
    if show_mouse:
        traces.append(
            go.Scatter(
                x=[maze.mouse[1]],
                y=[maze.mouse[0]],
                mode="markers",
                name="mouse",
                marker={"symbol": "circle", "size": 10, "color": MOUSE_COLOUR},
            )
        )
    return traces


def _region_trace(maze: Maze, region: int) -> go.Scatter:
    """The outline of the maze's top-right ``region x region`` squares (the cheese region the
    agent was trained with), drawn along the squares' outer edges."""
    lo, hi = top_right_region_span(maze.size, region)
    a, b = lo - 0.5, hi + 0.5
    n = hi - lo + 1
    return go.Scatter(
        x=[a, b, b, a, a],
        y=[a, a, b, b, a],
        mode="lines",
        name=f"{REGION_NAME} (top-right {n}x{n})",
        line={"color": REGION_COLOUR, "width": 3, "dash": "dash"},
        hoverinfo="skip",
    )


def _target_trace(target: Square) -> go.Scatter:
    """A box around a retargeting target square."""
    r, c = int(target[0]), int(target[1])
    h = 0.45
    return go.Scatter(
        x=[c - h, c + h, c + h, c - h, c - h],
        y=[r - h, r - h, r + h, r + h, r - h],
        mode="lines",
        name=TARGET_NAME,
        line={"color": TARGET_COLOUR, "width": 3},
        hovertemplate=f"retarget square ({r}, {c})<extra></extra>",
    )


def _overlays(maze: Maze, region: int | None, target: Square | None) -> list[go.Scatter]:
    """The optional region outline and target box, in that order."""
    traces = []
    if region is not None:
        traces.append(_region_trace(maze, region))
    if target is not None:
        if not maze.in_bounds(tuple(target)):
            raise MazeError(f"target {tuple(target)} is outside the {maze.size}x{maze.size} maze")
        traces.append(_target_trace(target))
    return traces


def _wrap(text: str, width: int = 110) -> str:
    """Plain text as plotly annotation text, broken into lines of at most ``width`` characters."""
    return "<br>".join(textwrap.wrap(text, width))


def _square_layout(
    fig: go.Figure, size: int, title: str | None, row: int | None = None, col: int | None = None
) -> None:
    axis = {"range": [-0.5, size - 0.5], "showgrid": False, "zeroline": False, "constrain": "domain"}
    if row is None:
        fig.update_layout(  # one call: each update_* call costs plotly a full relayout pass
            xaxis=axis,
            yaxis={**axis, "scaleanchor": "x", "scaleratio": 1},
            title=title,
            plot_bgcolor="white",
            margin={"l": 30, "r": 30, "t": 50, "b": 30},
            legend={"orientation": "h", "y": -0.08},  # below the maze, clear of any colour bar
        )
    else:
        anchor = "x" if (row - 1) * 3 + col == 1 else f"x{(row - 1) * 3 + col}"
        fig.update_xaxes(**axis, row=row, col=col)
        fig.update_yaxes(**axis, scaleanchor=anchor, scaleratio=1, row=row, col=col)


def maze_figure(
    maze: Maze, title: str | None = None, *, region: int | None = None, target: Square | None = None
) -> go.Figure:
    """The maze: walls dark, open squares light, cheese, top-right square, decision square, mouse.
    ``region``: outline the top-right ``region x region`` squares (the agent's training cheese
    region); ``target``: box a retargeting square."""
    fig = go.Figure([_walls_trace(maze), *_markers(maze), *_overlays(maze, region, target)])
    _square_layout(fig, maze.size, title)
    return fig


# --- vector fields ------------------------------------------------------------------------------------


def _arrow_segments(
    x0: np.ndarray, y0: np.ndarray, dx: np.ndarray, dy: np.ndarray, head: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    """Polyline coordinates (NaN breaks, which end a plotly line like None) for arrows from
    (x0, y0) by (dx, dy), heads ``head`` times the length, opening at 25 degrees. Arrays, not
    lists: plotly validates a list element by element (~0.1 s for a 25x25 field)."""
    x0, y0, dx, dy = (np.asarray(a, dtype=float) for a in (x0, y0, dx, dy))
    keep = np.hypot(dx, dy) >= 1e-3
    x0, y0, dx, dy = x0[keep], y0[keep], dx[keep], dy[keep]
    length = np.hypot(dx, dy)
    tx, ty = x0 + dx, y0 + dy
    angle = np.arctan2(dy, dx)
    gap = np.full_like(tx, np.nan)
    xs, ys = [x0, tx, gap], [y0, ty, gap]
    for side in (-1, 1):
        a = angle + math.pi - side * math.radians(25)
        xs += [tx, tx + head * length * np.cos(a), gap]
        ys += [ty, ty + head * length * np.sin(a), gap]
    # one arrow = 9 consecutive points: shaft, gap, left head, gap, right head, gap
    return np.stack(xs, axis=1).ravel(), np.stack(ys, axis=1).ravel()


def vector_field_figure(
    field: VectorField,
    mode: str = "moves",
    title: str | None = None,
    *,
    target: Square | None = None,
    region: int | None = None,
) -> go.Figure:
    """The maze with the policy's arrows. ``mode="moves"``: one arrow per move, length = its
    probability (half a square at probability 1), NOOP as a dot of matching size; ``"net"``:
    one arrow per square, ``(p_right - p_left, p_up - p_down)``. ``target``: box the
    retargeting square; ``region``: outline the training cheese region."""
    maze = field.maze
    fig = go.Figure([_walls_trace(maze)])
    x0 = field.cells[:, 1].astype(float)
    y0 = field.cells[:, 0].astype(float)
    if mode == "net":
        net = field.net() * 0.9
        xs, ys = _arrow_segments(x0, y0, net[:, 0], net[:, 1])
    elif mode == "moves":
        parts = []
        for move, (ux, uy) in _DIRECTIONS.items():
            p = field.probs[:, MOVES.index(move)] * 0.5
            parts.append(_arrow_segments(x0, y0, p * ux, p * uy))
        xs = np.concatenate([px for px, _ in parts])
        ys = np.concatenate([py for _, py in parts])
        noop = field.probs[:, MOVES.index("NOOP")]
        fig.add_trace(
            go.Scatter(
                x=x0,
                y=y0,
                mode="markers",
                name="NOOP",
                hoverinfo="skip",
                marker={"size": 2 + 10 * noop, "color": ARROW_COLOUR, "opacity": 0.5},
            )
        )
    else:
        raise ValueError(f"mode must be 'moves' or 'net', got {mode!r}")
    fig.add_trace(
        go.Scatter(
            x=xs, y=ys, mode="lines", name="policy", line={"color": ARROW_COLOUR, "width": 1.5}, hoverinfo="skip"
        )
    )
    text = [
        "<br>".join(f"{m}: {p:.3f}" for m, p in zip(MOVES, row, strict=True)) + f"<br>square ({r}, {c})"
        for (r, c), row in zip(field.cells, field.probs, strict=True)
    ]
    fig.add_trace(
        go.Scatter(
            x=x0, y=y0, mode="markers", marker={"size": 14, "opacity": 0}, text=text, hoverinfo="text", showlegend=False
        )
    )
    for trace in [*_markers(maze, show_mouse=False), *_overlays(maze, region, target)]:
        fig.add_trace(trace)
    _square_layout(fig, maze.size, title)
    return fig


def vector_field_diff_figure(
    diff: VectorFieldDiff, title: str | None = None, *, target: Square | None = None, region: int | None = None
) -> go.Figure:
    """Patched minus original: the total-variation distance per square as a heatmap, with the
    difference of the net arrows drawn on top (red). ``target``: box the retargeting square;
    ``region``: outline the training cheese region."""
    maze = diff.maze
    tv = np.full((maze.size, maze.size), np.nan)
    tv[diff.cells[:, 0], diff.cells[:, 1]] = diff.tv
    fig = go.Figure([_walls_trace(maze)])
    fig.add_trace(
        go.Heatmap(
            z=tv,
            x=np.arange(maze.size),
            y=np.arange(maze.size),
            colorscale="Reds",
            zmin=0,
            zmax=max(1e-9, float(np.nanmax(tv))) if len(diff.tv) else 1,
            colorbar={"title": "TV"},
            hovertemplate="square (%{y}, %{x})<br>TV %{z:.3f}<extra></extra>",
        )
    )
    net = diff.net() * 0.9
    xs, ys = _arrow_segments(diff.cells[:, 1].astype(float), diff.cells[:, 0].astype(float), net[:, 0], net[:, 1])
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="change", line={"color": "#b03a2e", "width": 1.5}))
    for trace in [*_markers(maze, show_mouse=False), *_overlays(maze, region, target)]:
        fig.add_trace(trace)
    _square_layout(fig, maze.size, title or f"patched - original (mean total-variation distance {diff.mean_tv:.3g})")
    return fig


def square_heatmap_figure(
    maze: Maze,
    values: np.ndarray | dict[Square, float],
    title: str | None = None,
    colorscale: str = "Viridis",
    zmid: float | None = None,
    zmin: float | None = None,
    zmax: float | None = None,
    label: str = "value",
    *,
    region: int | None = None,
    target: Square | None = None,
) -> go.Figure:
    """Any per-square scalar over the maze. ``values``: (size, size) indexed ``[row, col]`` (row 0
    at the bottom; NaN where undefined) or a ``{square: value}`` dict. Walls are drawn dark.
    ``region``: outline the training cheese region; ``target``: box a retargeting square."""
    if isinstance(values, dict):
        grid = np.full((maze.size, maze.size), np.nan)
        for (r, c), v in values.items():
            grid[r, c] = v
    else:
        grid = np.asarray(values, dtype=float)
    fig = go.Figure([_walls_trace(maze)])
    fig.add_trace(
        go.Heatmap(
            z=grid,
            x=np.arange(maze.size),
            y=np.arange(maze.size),
            colorscale=colorscale,
            zmid=zmid,
            zmin=zmin,
            zmax=zmax,
            colorbar={"title": label},
            hovertemplate="square (%{y}, %{x})<br>%{z:.4g}<extra></extra>",
        )
    )
    for trace in [*_markers(maze), *_overlays(maze, region, target)]:
        fig.add_trace(trace)
    _square_layout(fig, maze.size, title)
    return fig


# --- activations --------------------------------------------------------------------------------------


def channel_map_figure(
    amap: np.ndarray,
    maze: Maze | None = None,
    title: str | None = None,
    aligned: bool = False,
    zmid: float | None = None,
    label: str = "activation",
    *,
    region: int | None = None,
) -> go.Figure:
    """One channel's map (or any (H, W) map over activation cells, named ``label``).
    ``aligned=False``: the raw (H, W) activation grid (row 0 at the top),
    with the cells of the cheese (diamond), mouse (circle) and top-right square (star) marked
    when ``maze`` is given. ``aligned=True``: sampled at every square of ``maze`` (the cell holding
    each square's centre) and drawn over the maze; ``region`` then outlines the training cheese
    region."""
    amap = np.asarray(amap)
    if aligned:
        if maze is None:
            raise ValueError("an aligned channel map needs the maze")
        values = square_values(maze, amap)
        return square_heatmap_figure(maze, values, title, "RdBu_r", zmid=zmid or 0.0, label=label, region=region)
    height, width = amap.shape
    fig = go.Figure(
        go.Heatmap(
            z=amap,
            colorscale="RdBu_r",
            zmid=0.0 if zmid is None else zmid,
            colorbar={"title": label},
            hovertemplate="cell (%{y}, %{x})<br>%{z:.3f}<extra></extra>",
        )
    )
    if maze is not None:
        marks = [("mouse", maze.mouse, "circle-open"), ("top-right square", maze.top_right, "star-open")]
        if maze.cheese is not None:
            marks.insert(0, ("cheese", maze.cheese, "diamond-open"))
        for name, square, symbol in marks:
            r, c = square_to_cell(square, maze.size, width)
            fig.add_trace(
                go.Scatter(
                    x=[c],
                    y=[r],
                    mode="markers",
                    name=name,
                    marker={"symbol": symbol, "size": 14, "color": "black", "line": {"width": 2}},
                )
            )
    fig.update_yaxes(autorange="reversed", scaleanchor="x", scaleratio=1, range=[height - 0.5, -0.5])
    fig.update_layout(title=title, plot_bgcolor="white")
    return fig


def channel_grid_figure(
    maps: np.ndarray,
    channels: Sequence[int] | None = None,
    columns: int = 16,
    title: str | None = None,
    shared_scale: bool = False,
) -> go.Figure:
    """Small multiples: the maps of many channels (C, H, W) tiled in one heatmap (fast even for
    128 channels), each labelled with its channel number, coloured around 0. By default each
    map is divided by its own largest absolute value (so every channel's pattern shows);
    ``shared_scale=True`` keeps the raw values on one scale (so magnitudes compare)."""
    maps = np.asarray(maps)
    channels = list(range(maps.shape[0])) if channels is None else list(channels)
    height, width = maps.shape[1:]
    rows = math.ceil(len(channels) / columns)
    gap = 1
    mosaic = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), np.nan)
    annotations = []
    for k, ch in enumerate(channels):
        r, c = divmod(k, columns)
        top, left = r * (height + gap), c * (width + gap)
        tile = maps[ch].astype(float)
        if not shared_scale:
            peak = np.abs(tile).max()
            tile = tile / peak if peak > 0 else tile
        mosaic[top : top + height, left : left + width] = tile
        annotations.append(
            {
                "x": left,
                "y": top,
                "text": str(ch),
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "top",
                "font": {"size": 9, "color": "#333"},
            }
        )
    limit = float(np.nanmax(np.abs(mosaic))) if np.isfinite(mosaic).any() else 1.0
    fig = go.Figure(
        go.Heatmap(
            z=mosaic,
            colorscale="RdBu_r",
            zmin=-limit,
            zmax=limit,
            hoverinfo="skip",
            colorbar={"title": "activation" if shared_scale else "/ channel max"},
        )
    )
    fig.update_yaxes(autorange="reversed", scaleanchor="x", scaleratio=1, visible=False)
    fig.update_xaxes(visible=False)
    fig.update_layout(title=title, annotations=annotations, plot_bgcolor="white", height=max(300, 60 * rows + 80))
    return fig


# --- steering, retargeting, patching ----------------------------------------------------------------


def steering_grid_figure(sweep: pd.DataFrame, statistic: str = "mean", title: str | None = None) -> go.Figure:
    """How the two shards combine: P(cheese | decision square) and P(top-right | decision square)
    over the grid of (cheese coeff, top-right coeff) from ``steering_sweep``, aggregated over
    mazes by ``statistic`` ("mean" or "median"); with exact outcomes in the table, P(cheese) and
    P(top-right first) as a second row."""
    panels = [("p_cheese_ds", "P(cheese | decision square)"), ("p_top_right_ds", "P(top-right | decision square)")]
    if "p_cheese" in sweep:
        panels += [("p_cheese", "P(reach cheese)"), ("p_top_right", "P(top-right first)")]
    rows = (len(panels) + 1) // 2
    fig = make_subplots(rows=rows, cols=2, subplot_titles=[p[1] for p in panels], horizontal_spacing=0.15)
    for k, (column, _) in enumerate(panels):
        grid = sweep.pivot_table(index="top_right_coeff", columns="cheese_coeff", values=column, aggfunc=statistic)
        fig.add_trace(
            go.Heatmap(
                z=grid.to_numpy(),
                x=[str(c) for c in grid.columns],
                y=[str(t) for t in grid.index],
                zmin=0,
                zmax=1,
                colorscale="Viridis",
                showscale=k == 0,
                texttemplate="%{z:.2f}",
                hovertemplate="cheese coeff %{x}<br>top-right coeff %{y}<br>%{z:.3f}<extra></extra>",
            ),
            row=k // 2 + 1,
            col=k % 2 + 1,
        )
    fig.update_xaxes(title_text="cheese vector coeff", type="category")
    fig.update_yaxes(title_text="top-right vector coeff", type="category")
    n = sweep["maze_index"].nunique() if "maze_index" in sweep else 1
    fig.update_layout(title=title or f"How the shards combine ({statistic} over {n} maze(s))", height=380 * rows)
    return fig


def retargeting_figure(result: RetargetingMap, title: str | None = None, *, region: int | None = None) -> go.Figure:
    """Exact P(reach each square) when retargeted to it, the unpatched baseline, and the gain;
    ``region`` outlines the training cheese region in each panel."""
    maze = result.maze
    grids = []
    for values in (result.p_reach, result.p_reach_baseline, result.p_reach - result.p_reach_baseline):
        grid = np.full((maze.size, maze.size), np.nan)
        grid[result.targets[:, 0], result.targets[:, 1]] = values
        grids.append(grid)
    fig = make_subplots(
        rows=1, cols=3, subplot_titles=["retargeted to the square", "no patch", "gain"], horizontal_spacing=0.1
    )
    for k, grid in enumerate(grids):
        fig.add_trace(_walls_trace(maze), row=1, col=k + 1)
        gain = k == 2
        fig.add_trace(
            go.Heatmap(
                z=grid,
                x=np.arange(maze.size),
                y=np.arange(maze.size),
                colorscale="RdBu" if gain else "Viridis",
                zmid=0 if gain else None,
                zmin=None if gain else 0,
                zmax=None if gain else 1,
                # One bar for both probability panels (between them and the gain), one for the gain.
                showscale=k > 0,
                colorbar={"x": 0.64 if k == 1 else 1.0, "len": 0.8, "thickness": 12},
                hovertemplate="(%{y}, %{x}) %{z:.3f}<extra></extra>",
            ),
            row=1,
            col=k + 1,
        )
        for trace in _overlays(maze, region, None):
            fig.add_trace(trace, row=1, col=k + 1)
        _square_layout(fig, maze.size, None, row=1, col=k + 1)
    fig.update_layout(
        title=title or "Retargeting: exact P(reach square within 500 steps)",
        height=420,
        width=1100,
        plot_bgcolor="white",
        showlegend=False,
    )
    return fig


def patch_effects_figure(table: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Mean total-variation distance of the vector field per variant (from ``patch_effects`` or
    ``resampling_experiment``; the latter grouped by channel set and condition)."""
    if "condition" in table:
        grouped = table.groupby(["channel_set", "condition"])["mean_tv"].agg(["mean", "std"]).reset_index()
        labels = grouped["channel_set"] + " / " + grouped["condition"]
        fig = go.Figure(go.Bar(x=labels, y=grouped["mean"], error_y={"array": grouped["std"].fillna(0)}))
    else:
        fig = go.Figure(go.Bar(x=table["variant"], y=table["mean_tv"]))
    fig.update_layout(title=title or "Change of the vector field", yaxis_title="mean total-variation distance")
    return fig


def channel_ranking_figure(ranking: pd.DataFrame, top: int = 20, title: str | None = None) -> go.Figure:
    """The best cheese-tracking channels (from ``rank_cheese_channels``): correlation and arg-max
    hit rate side by side."""
    head = ranking.head(top)
    labels = [str(c) for c in head["channel"]]
    fig = go.Figure(
        [
            go.Bar(x=labels, y=head["corr"], name="correlation with the cheese cell"),
            go.Bar(x=labels, y=head["argmax_hit"], name="arg-max within 1 cell"),
        ]
    )
    fig.update_layout(
        barmode="group", title=title or "Channels that track the cheese", xaxis_title="channel", xaxis_type="category"
    )
    return fig


def attribution_figure(
    attribution: Attribution, maze: Maze, aligned: bool = True, title: str | None = None
) -> go.Figure:
    """Integrated-gradients attribution summed over channels, over the maze (``aligned``) or as
    the raw activation grid. Red cells raise P(move) relative to the baseline, blue lower it."""
    a = attribution
    title = title or (
        f"Attribution of P({a.move}) at {a.square} to {a.layer} (baseline {a.baseline}): "
        f"{a.baseline_prob:.3f} -> {a.prob:.3f}, completeness gap {a.delta:+.1e}"
    )
    return channel_map_figure(a.spatial(), maze, title, aligned=aligned, zmid=0.0, label="attribution")


def attribution_channels_figure(attribution: Attribution, top: int = 20, title: str | None = None) -> go.Figure:
    """The channels (or units of a flat layer) with the largest total attribution, signed."""
    totals = attribution.channel_totals()
    order = np.argsort(-np.abs(totals))[:top]
    fig = go.Figure(
        go.Bar(
            x=[str(i) for i in order],
            y=totals[order],
            marker_color=["#b2182b" if v > 0 else "#2166ac" for v in totals[order]],
        )
    )
    fig.update_layout(
        title=title or f"Channels of {attribution.layer} by attribution to P({attribution.move})",
        xaxis_title="channel",
        xaxis_type="category",
        yaxis_title="attribution",
    )
    return fig


def region_curve_figure(table: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Goal misgeneralization across training regions (from ``mazewb.train.evaluate.region_curve``):
    P(cheese), P(top-right first) and P(cheese move | decision square) on the common test (the
    same mazes for every agent; off each agent's own distribution for a table without it) per
    agent's cheese region, with in-distribution P(cheese) for reference."""
    test = "common" if "common_p_cheese" in table else "off"
    where = "common test" if test == "common" else "cheese outside the region"
    series = [
        (f"{test}_p_cheese", f"P(cheese), {where}", "#d9a400"),
        (f"{test}_p_cheese_move_at_decision", "P(cheese move | decision square)", "#7b3294"),
        (f"{test}_p_top_right", "P(top-right first)", ARROW_COLOUR),
        ("in_p_cheese", "P(cheese), cheese in the agent's region", "#999999"),
    ]
    fig = go.Figure(
        [
            go.Scatter(
                x=table["region"],
                y=table[column],
                name=name,
                mode="lines+markers",
                line={"color": colour, "dash": "dot" if column == "in_p_cheese" else "solid"},
                customdata=table["file"],
                hovertemplate="%{customdata}<br>region %{x}: %{y:.3f}<extra></extra>",
            )
            for column, name, colour in series
        ]
    )
    fig.update_layout(
        title=title or "Goal misgeneralization across training regions",
        xaxis_title="cheese region the agent was trained with (top-right N x N)",
        yaxis={"title": "mean exact probability", "range": [0, 1.02]},
    )
    return fig


# --- statistics and rollouts ------------------------------------------------------------------------


def _paper_note(
    fig: go.Figure, text: str, y: float, anchor: str, size: int, colour: str, yshift: int = 0
) -> None:
    """Left-aligned text at the figure's left edge, above (anchor "bottom") or below ("top") height y."""
    fig.add_annotation(
        text=text, xref="paper", yref="paper", x=0, y=y, yshift=yshift, xanchor="left", yanchor=anchor,
        align="left", showarrow=False, font={"size": size, "color": colour},
    )


def _warnings_text(warnings: Sequence[str]) -> str:
    return "<br>".join("⚠ " + _wrap(w, 120).replace("<br>", "<br>   ") for w in warnings)


def behaviour_figure(stats: BehaviourStats, title: str | None = None) -> go.Figure:
    """L1-logistic coefficients (z-scored features) and their VIFs; hovering a bar explains the
    feature (``GLOSSARY``); the result's warnings (tiny held-out set, negative R², accuracy
    below the baseline, infinite VIFs) are printed under the bars."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["logistic coefficient (z-scored)", "VIF (log scale)"])
    names = list(stats.coefficients.index)
    meanings = [GLOSSARY.get(n, "") for n in names]
    fig.add_trace(
        go.Bar(
            x=stats.coefficients.to_numpy(),
            y=names,
            orientation="h",
            showlegend=False,
            customdata=meanings,
            hovertemplate="%{y}: %{customdata}<br>coefficient %{x:.3f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    raw = stats.vif.reindex(names).to_numpy()
    vif = np.minimum(raw, 1e6)  # exact collinearity (inf) drawn at 1e6 and labelled "inf"
    fig.add_trace(
        go.Bar(
            x=vif,
            y=names,
            orientation="h",
            showlegend=False,
            text=["inf" if np.isinf(v) else "" for v in raw],
            textposition="inside",
            customdata=[f"{v:.3g}" for v in raw],
            hovertemplate="%{y}: VIF %{customdata}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_xaxes(type="log", row=1, col=2)
    height = 420
    if stats.warnings:
        lines = sum(_wrap(w, 120).count("<br>") + 1 for w in stats.warnings)
        height += 18 * lines + 30
        _paper_note(fig, _warnings_text(stats.warnings), y=-0.12, anchor="top", size=12, colour="#a04000")
        fig.update_layout(margin={"b": 18 * lines + 80})
    fig.update_layout(
        title=title
        or f"What predicts going for the cheese: held-out accuracy {stats.accuracy:.3f} "
        f"vs always-majority {stats.baseline:.3f}",
        height=height,
    )
    return fig


def behaviour_table_figure(stats: BehaviourStats, title: str | None = None) -> go.Figure:
    """The regression result as a table: every feature with its one-line meaning, logistic and
    linear coefficients and VIF ("inf": exact collinearity), the held-out scores, and the
    result's warnings above the table."""
    table = stats.table()
    header = ["feature", "meaning", "logistic coef", "linear coef", "VIF"]
    cells = [
        list(table.index),
        list(table["meaning"]),
        [f"{v:+.3f}" for v in table["logistic_coef"]],
        [f"{v:+.3f}" for v in table["linear_coef"]],
        ["inf" if np.isinf(v) else f"{v:.3g}" for v in table["vif"]],
    ]
    fig = go.Figure(
        go.Table(
            columnwidth=[1.3, 4.5, 1, 1, 0.8],
            header={"values": header, "align": "left", "fill_color": "#e8e4d8"},
            cells={"values": cells, "align": "left", "height": 24},
        )
    )
    scores = (
        f"{stats.n_train} training / {stats.n_test} held-out mazes; held-out accuracy {stats.accuracy:.3f} "
        f"(always-majority {stats.baseline:.3f}); linear R² train {stats.linear_r2_train:.3f}, "
        f"held-out {stats.linear_r2_test:.3f}"
    )
    lines = 1 + sum(_wrap(w, 120).count("<br>") + 1 for w in stats.warnings)
    fig.update_layout(
        title={"text": title or "Behavioural statistics: what predicts going for the cheese", "y": 0.98},
        height=90 + 18 * lines + 26 * (len(table) + 1) + 40,
        margin={"t": 60 + 18 * lines, "l": 10, "r": 10, "b": 10},
    )
    _paper_note(
        fig,
        scores + ("<br>" + _warnings_text(stats.warnings) if stats.warnings else ""),
        y=1.0, anchor="bottom", size=12, colour="#a04000" if stats.warnings else "#333",
    )
    return fig


# --- outcomes -------------------------------------------------------------------------------------------


def _named_outcomes(results: ExactOutcomes | Mapping[str, ExactOutcomes]) -> dict[str, ExactOutcomes]:
    return {"P": results} if isinstance(results, ExactOutcomes) else dict(results)


def outcomes_figure(results: ExactOutcomes | Mapping[str, ExactOutcomes], title: str | None = None) -> go.Figure:
    """The four mutually exclusive outcomes of an episode as one stacked bar per result
    (``{"no patch": base, "patched": patched}`` or one ``ExactOutcomes``), each bar adding up
    to 1, with the definition of "first" written under it."""
    named = _named_outcomes(results)
    names = list(named)
    fig = go.Figure()
    for (field, label), colour in zip(OUTCOME_EVENTS, OUTCOME_COLOURS, strict=True):
        values = [float(getattr(named[n], field)) for n in names]
        fig.add_trace(
            go.Bar(
                x=values,
                y=names,
                orientation="h",
                name=label,
                marker_color=colour,
                text=[f"{v:.3f}" if v >= 0.04 else "" for v in values],
                textposition="inside",
                hovertemplate=f"{label}: %{{x:.4f}}<extra>%{{y}}</extra>",
            )
        )
    _paper_note(fig, _wrap(OUTCOME_DEFINITION, 120), y=0, anchor="top", size=11, colour="#444", yshift=-45)
    fig.update_layout(
        barmode="stack",
        title={"text": title or "How the episode ends (exact; the four outcomes add up to 1)", "y": 0.97},
        xaxis={"range": [0, 1], "title": None},
        yaxis={"type": "category", "autorange": "reversed"},
        # The legend above the bars, in the outcomes' order; the definition below them.
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "traceorder": "normal"},
        height=250 + 40 * len(names),
        margin={"t": 110, "b": 110},
    )
    return fig


def outcomes_table_figure(results: ExactOutcomes | Mapping[str, ExactOutcomes], title: str | None = None) -> go.Figure:
    """The four mutually exclusive outcomes (``outcome_table``) as a table with a total row of
    1.000 per column and the definition of "first" above it."""
    table = outcome_table(results)
    values = [list(table.index)] + [[f"{v:.3f}" for v in table[c]] for c in table.columns]
    bold = ["<b>total</b>" if i == "total" else i for i in table.index]
    values[0] = bold
    fig = go.Figure(
        go.Table(
            columnwidth=[4] + [1] * len(table.columns),
            header={"values": ["outcome", *table.columns], "align": "left", "fill_color": "#e8e4d8"},
            cells={"values": values, "align": "left", "height": 24},
        )
    )
    fig.update_layout(
        title={"text": title or "How the episode ends (exact)", "y": 0.97},
        height=300,
        margin={"t": 110, "l": 10, "r": 10, "b": 10},
    )
    _paper_note(fig, _wrap(OUTCOME_DEFINITION, 120), y=1.0, anchor="bottom", size=11, colour="#444")
    return fig


# --- episodes -------------------------------------------------------------------------------------------


def _wall_shapes(maze: Maze) -> list[dict]:
    """The maze as layout rectangles below the traces: the open background, then one rectangle
    per horizontal run of walls. Plotly's frame animation (without a full redraw) drops
    heatmaps and filled traces from the picture but never touches layout shapes, so an episode
    animation drawn this way keeps its walls."""
    size = maze.size

    def rect(r0: float, r1: float, c0: float, c1: float, colour: str, pad: float = 0.0) -> dict:
        # ``pad``: wall rectangles overlap their neighbours slightly, so no seam shows between rows.
        return {
            "type": "rect",
            "xref": "x",
            "yref": "y",
            "x0": c0 - 0.5 - pad,
            "x1": c1 + 0.5 + pad,
            "y0": r0 - 0.5 - pad,
            "y1": r1 + 0.5 + pad,
            "fillcolor": colour,
            "line": {"width": 0},
            "layer": "below",
        }

    shapes = [rect(0, size - 1, 0, size - 1, OPEN_COLOUR)]
    for r in range(size):
        c = 0
        while c < size:
            if maze.walls[r][c]:
                start = c
                while c + 1 < size and maze.walls[r][c + 1]:
                    c += 1
                shapes.append(rect(r, r, start, c, WALL_COLOUR, pad=0.02))
            c += 1
    return shapes


def trajectory_figure(
    maze: Maze,
    trajectories: Sequence[Trajectory],
    title: str | None = None,
    animate: bool = False,
    *,
    region: int | None = None,
) -> go.Figure:
    """Sampled episodes drawn over the maze (slightly jittered so overlapping paths show).
    ``animate``: the first trajectory as an animation, one frame per step. The walls are
    layout shapes, so they stay drawn while the animation plays. ``region``: outline the
    training cheese region."""
    fig = go.Figure([*_markers(maze), *_overlays(maze, region, None)])
    _square_layout(fig, maze.size, title)
    fig.update_layout(shapes=_wall_shapes(maze))
    rng = np.random.default_rng(0)
    for k, traj in enumerate(trajectories):
        pts = np.array(traj.squares, dtype=float)
        jitter = rng.uniform(-0.15, 0.15, 2)
        fig.add_trace(
            go.Scatter(
                x=pts[:, 1] + jitter[0],
                y=pts[:, 0] + jitter[1],
                mode="lines",
                opacity=0.5,
                name=f"episode {k} ({'cheese' if traj.reached_cheese else 'timeout'}, {traj.steps} steps)",
            )
        )
    if animate and trajectories:
        traj = trajectories[0]
        base = len(fig.data)
        fig.add_trace(
            go.Scatter(
                x=[traj.squares[0][1]],
                y=[traj.squares[0][0]],
                mode="markers",
                name="mouse now",
                marker={"size": 14, "color": "#e67e22"},
            )
        )
        fig.frames = [
            go.Frame(data=[go.Scatter(x=[sq[1]], y=[sq[0]])], traces=[base], name=str(t))
            for t, sq in enumerate(traj.squares)
        ]
        fig.update_layout(
            updatemenus=[
                {
                    "type": "buttons",
                    "buttons": [
                        {
                            "label": "play",
                            "method": "animate",
                            "args": [None, {"frame": {"duration": 80, "redraw": False}, "fromcurrent": True}],
                        },
                        {"label": "pause", "method": "animate", "args": [[None], {"mode": "immediate"}]},
                    ],
                }
            ],
            sliders=[
                {
                    "steps": [
                        {
                            "label": str(t),
                            "method": "animate",
                            "args": [[str(t)], {"mode": "immediate", "frame": {"redraw": False}}],
                        }
                        for t in range(len(traj.squares))
                    ]
                }
            ],
        )
    return fig
