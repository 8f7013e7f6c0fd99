"""Create and serve the Dash app."""

from __future__ import annotations

import base64
import io

from dash import Dash, Input, Output, dcc, html

from mazewb.maze import Maze, render_frame


def _png(array) -> str:  # noqa: ANN001
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def create_app(checkpoint: str | None = None) -> Dash:
    app = Dash(__name__, title="mazewb")
    app.layout = html.Div(
        [
            html.H1("mazewb"),
            html.Label("Level seed "),
            dcc.Input(id="seed", type="number", value=0, min=0, step=1),
            html.Div(id="maze-info"),
            html.Img(id="maze-frame", style={"width": "512px"}),
        ]
    )

    @app.callback(Output("maze-frame", "src"), Output("maze-info", "children"), Input("seed", "value"))
    def show(seed):  # noqa: ANN001, ANN202
        maze = Maze.from_seed(int(seed or 0))
        return _png(render_frame(maze)), f"{maze.size}x{maze.size} maze, cheese at {maze.cheese}"

    return app


def serve(host: str = "127.0.0.1", port: int = 8050, checkpoint: str | None = None, debug: bool = False) -> None:
    create_app(checkpoint).run(host=host, port=port, debug=debug)
