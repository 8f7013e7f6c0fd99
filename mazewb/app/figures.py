"""Figures that only the web app needs: the clickable maze panel and small helpers.

Everything is drawn in the 512x512 display frame's pixel coordinates (x to the right, y
downwards, like the image), converted from maze squares by ``mazewb.maze.geometry`` only.
Science figures (vector fields, heatmaps, activations, statistics) come from ``mazewb.plots``.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
from PIL import Image  # imported up front: a first import racing in two request threads can fail

from mazewb.maze import Maze
from mazewb.maze.geometry import FRAME_PIXELS, square_to_pixel_centre, top_right_region_span
from mazewb.maze.graph import decision_square, shortest_path

CHEESE_PATH = "#ffcc00"
TOP_RIGHT_PATH = "#29b6f6"
DECISION = "#ff3df2"
TARGET = "#7CFC00"
REGION = "#f97316"
FONT = dict(family="Inter, 'Segoe UI', Helvetica, Arial, sans-serif", size=15, color="#1b1f24")


def image_uri(array: np.ndarray, fmt: str = "JPEG") -> str:
    """A data URI of an RGB uint8 image (JPEG for photos of the game, PNG for pixel art)."""
    buf = io.BytesIO()
    if fmt == "JPEG":
        Image.fromarray(array).save(buf, format="JPEG", quality=88)
        mime = "jpeg"
    else:
        Image.fromarray(array).save(buf, format="PNG", compress_level=3)
        mime = "png"
    return f"data:image/{mime};base64," + base64.b64encode(buf.getvalue()).decode()


def upscale(array: np.ndarray, pixels: int = FRAME_PIXELS) -> np.ndarray:
    """Nearest-neighbour upscale of a square image to ``pixels`` (for crisp 64x64 views)."""
    factor = pixels // array.shape[0]
    return np.repeat(np.repeat(array, factor, axis=0), factor, axis=1)


def _centre(square: tuple[int, int], size: int) -> tuple[float, float]:
    prow, pcol = square_to_pixel_centre(square, size, FRAME_PIXELS)
    return pcol, prow  # (x, y)


def _path_trace(path: list[tuple[int, int]], size: int, color: str, name: str) -> go.Scatter:
    xy = [_centre(sq, size) for sq in path]
    return go.Scatter(
        x=[p[0] for p in xy],
        y=[p[1] for p in xy],
        mode="lines",
        line=dict(color=color, width=5),
        opacity=0.85,
        name=name,
        hoverinfo="skip",
    )


def _square_box(square: tuple[int, int], size: int, color: str, name: str, dash: str = "solid") -> go.Scatter:
    x, y = _centre(square, size)
    h = FRAME_PIXELS / 25 / 2
    return go.Scatter(
        x=[x - h, x + h, x + h, x - h, x - h],
        y=[y - h, y - h, y + h, y + h, y - h],
        mode="lines",
        line=dict(color=color, width=4, dash=dash),
        name=name,
        hoverinfo="skip",
    )


def _region_box(region: int, size: int) -> go.Scatter:
    """The outline of the top-right ``region x region`` squares (the training cheese region)."""
    lo, hi = top_right_region_span(size, region)
    h = FRAME_PIXELS / 25 / 2
    x0, y0 = _centre((hi, lo), size)  # top-left square of the region (row hi is the top)
    x1, y1 = _centre((lo, hi), size)
    return go.Scatter(
        x=[x0 - h, x1 + h, x1 + h, x0 - h, x0 - h],
        y=[y0 - h, y0 - h, y1 + h, y1 + h, y0 - h],
        mode="lines",
        line=dict(color=REGION, width=3, dash="dash"),
        name="training cheese region",
        hoverinfo="skip",
    )


def maze_panel_figure(
    maze: Maze,
    background_uri: str,
    show_paths: bool = True,
    show_decision: bool = True,
    target: tuple[int, int] | None = None,
    height: int = 552,
    region: int | None = None,
) -> go.Figure:
    """The maze as the game draws it (``background_uri``: the 512x512 frame or the upscaled
    64x64 observation), with the paths from the mouse to the cheese and to the top-right
    square, the decision square, a retargeting target and (``region``) the outline of the
    agent's training cheese region (the top-right ``region x region`` squares) drawn over it.
    Clicks anywhere on
    the image report pixel coordinates (x, y) of the 512x512 frame."""
    fig = go.Figure()
    fig.add_trace(
        go.Image(
            source=background_uri,
            x0=0,
            y0=0,
            dx=1,
            dy=1,
            hovertemplate="click to edit<extra></extra>",
            name="maze",
        )
    )
    size = maze.size
    if show_paths:
        if maze.cheese is not None:
            path = shortest_path(maze, maze.mouse, maze.cheese)
            if path:
                fig.add_trace(_path_trace(path, size, CHEESE_PATH, "path to cheese"))
        path = shortest_path(maze, maze.mouse, maze.top_right)
        if path:
            fig.add_trace(_path_trace(path, size, TOP_RIGHT_PATH, "path to top-right"))
    if show_decision:
        ds = decision_square(maze)
        if ds is not None:
            fig.add_trace(_square_box(ds, size, DECISION, "decision square"))
    if region is not None:
        fig.add_trace(_region_box(region, size))
    if target is not None and maze.in_bounds(target):
        fig.add_trace(_square_box(target, size, TARGET, "retarget square", dash="dot"))
    fig.update_layout(
        margin=dict(l=0, r=0, t=32, b=0),  # the modebar sits above the maze, not over its top row
        height=height,
        showlegend=False,
        xaxis=dict(visible=False, range=[0, FRAME_PIXELS], constrain="domain", fixedrange=True),
        yaxis=dict(visible=False, range=[FRAME_PIXELS, 0], scaleanchor="x", fixedrange=True),
        plot_bgcolor="white",
        paper_bgcolor="white",
        font=FONT,
        dragmode=False,
        uirevision="maze",
    )
    return fig


def legend_items(maze: Maze, region: int | None = None) -> list[tuple[str, str]]:
    """(colour, label) pairs for the maze panel's key."""
    items = [(CHEESE_PATH, "path to cheese"), (TOP_RIGHT_PATH, "path to top-right square")]
    if decision_square(maze) is not None:
        items.append((DECISION, "decision square"))
    if region is not None:
        lo, hi = top_right_region_span(maze.size, region)
        n = hi - lo + 1
        items.append((REGION, f"training cheese region (top-right {n}x{n})"))
    return items


def message_figure(text: str, height: int = 360) -> go.Figure:
    """An empty figure that says why there is nothing to show."""
    fig = go.Figure()
    fig.add_annotation(
        text=text, showarrow=False, font=dict(size=16, color="#555"), x=0.5, y=0.5, xref="paper", yref="paper"
    )
    fig.update_layout(
        height=height,
        xaxis=dict(visible=False),
        yaxis=dict(visible=False),
        margin=dict(l=10, r=10, t=10, b=10),
        plot_bgcolor="white",
        paper_bgcolor="white",
    )
    return fig


def activation_overlay_figure(
    obs: np.ndarray, amap: np.ndarray, title: str | None = None, height: int = 520, uri: str | None = None
) -> go.Figure:
    """One channel's (H, W) map over the agent's 64x64 view (cells aligned with the image's
    pixels: a cell covers 64 / W pixels), diverging colours centred on 0."""
    h, w = amap.shape
    scale = 64 / w
    bound = float(np.nanmax(np.abs(amap))) or 1.0
    fig = go.Figure()
    if uri is not None:
        fig.add_trace(go.Image(source=uri, x0=0, y0=0, dx=64 / 512, dy=64 / 512, hoverinfo="skip"))
    else:
        fig.add_trace(go.Image(z=obs, x0=0.5, y0=0.5, hoverinfo="skip"))
    fig.add_trace(
        go.Heatmap(
            z=amap,
            x0=scale / 2,
            dx=scale,
            y0=scale / 2,
            dy=scale,
            colorscale="RdBu_r",
            zmid=0,
            zmin=-bound,
            zmax=bound,
            opacity=0.62,
            colorbar=dict(title=dict(text="activation", side="right"), thickness=14, len=0.85),
            hovertemplate="cell (%{customdata[0]}, %{customdata[1]})<br>value %{z:.3f}<extra></extra>",
            customdata=np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij"), axis=-1),
        )
    )
    fig.update_layout(
        height=height,
        margin=dict(l=6, r=60, t=40 if title else 6, b=6),
        title=dict(text=title, x=0.5, font=dict(size=17)) if title else None,
        plot_bgcolor="white",
        paper_bgcolor="white",
        font=FONT,
        dragmode=False,
        xaxis=dict(visible=False, range=[0, 64], constrain="domain", fixedrange=True),
        yaxis=dict(visible=False, range=[64, 0], scaleanchor="x", fixedrange=True),
    )
    return fig


def scatter_figure(x, y, xlabel: str, ylabel: str, title: str, height: int = 420) -> go.Figure:  # noqa: ANN001
    fig = go.Figure(go.Scatter(x=x, y=y, mode="markers", marker=dict(size=7, color="#2563eb", opacity=0.55)))
    fig.update_layout(
        height=height,
        title=dict(text=title, x=0.5, font=dict(size=17)),
        font=FONT,
        xaxis=dict(title=xlabel),
        yaxis=dict(title=ylabel, range=[-0.02, 1.02]),
        margin=dict(l=60, r=20, t=50, b=50),
        plot_bgcolor="white",
        paper_bgcolor="white",
    )
    return fig
