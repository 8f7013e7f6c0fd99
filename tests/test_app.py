"""The web app's pieces without a browser: view state and its URL, state transitions, the result
cache, background jobs, the checkpoint registry, the bench command."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from mazewb import Maze
from mazewb.app import dispatch, state
from mazewb.app.cache import ResultCache
from mazewb.app.jobs import JobContext, JobRunner
from mazewb.app.panels import maze as maze_panel
from mazewb.app.state import (
    StateError,
    SteerSpec,
    ViewState,
    from_query,
    seed_maze,
    state_from_dict,
    state_to_dict,
    to_query,
)
from mazewb.app.wire import update_body
from mazewb.errors import AnalysisError, MazeError

LAYERS = {"embedder.block2.res1.resadd_out": (32, 16, 16), "embedder.block3.res2.resadd_out": (32, 8, 8)}


# --- the view state and its URL ------------------------------------------------------------------
def test_default_view_has_an_empty_query() -> None:
    assert to_query(ViewState()) == ""
    assert from_query("") == ViewState()
    assert from_query(None) == ViewState()


def test_query_round_trip_of_a_full_view() -> None:
    s = ViewState(
        checkpoint="path:/tmp/agent.pt",
        seed=3,
        cheese=(4, 4),
        mouse=(0, 2),
        walls=((1, 0), (3, 3)),
        tab="steer",
        view="agent",
        overlays=("decision",),
        arrows="net",
        heat="reach_cheese",
        layer="embedder.block3.res2.resadd_out",
        channel=7,
        steer=SteerSpec(
            cheese_coeff=-1.0,
            cheese_source=12,
            top_right_coeff=2.5,
            retarget_square=(2, 2),
            retarget_channels=(8, 55),
            retarget_value=2.3,
            ablate_channels=(1,),
            ablate_mode="mean",
            resample_channels=(7, 8),
            resample_source=9,
        ),
        grid_cheese=(-3.0, 0.0),
        grid_top_right=(0.0, 5.0),
        grid_steps=7,
        episode="sampled",
        episode_seed=4,
        stats_mazes=500,
        stats_start=100,
    )
    query = to_query(s)
    assert query.startswith("?") and "seed=3" in query and "cheese=4,4" in query and "cv=-1" in query
    assert from_query(query) == s
    assert state_from_dict(state_to_dict(s)) == s


def test_removed_cheese_and_imported_maze_round_trip() -> None:
    maze = Maze.from_strings(["C.#..", ".##.#", ".#..#", ".#.##", "M...."])
    s = ViewState().with_imported(maze)
    assert s.maze() == maze
    assert from_query(to_query(s)).maze() == maze
    assert from_query(to_query(s.with_maze(maze.without_cheese()))).maze().cheese is None
    removed = ViewState(seed=3).with_maze(seed_maze(3).without_cheese())
    assert "cheese=none" in to_query(removed)
    assert from_query(to_query(removed)).maze().cheese is None


@pytest.mark.parametrize(
    "query, words",
    [
        ("?seed=abc", "seed must be a whole number"),
        ("?seed=-1", "seed must be between"),
        ("?tab=nope", "tab must be one of"),
        ("?cheese=1", "row,col"),
        ("?cv=nan", "finite number"),
        ("?bogus=1", "unknown parameter"),
        ("?maze=5-zz", "SIZE-HEX"),
    ],
)
def test_bad_links_name_the_problem(query: str, words: str) -> None:
    with pytest.raises(StateError, match=words):
        from_query(query)


def test_a_link_with_an_impossible_edit_falls_back_with_a_message() -> None:
    out = dispatch.load_url("?seed=3&cheese=1,1")  # (1, 1) is a wall in level 3
    assert out.error and "wall" in out.message and out.state == ViewState()


# --- state transitions -----------------------------------------------------------------------------
def test_clicks_edit_the_maze() -> None:
    s = ViewState(seed=3)
    base = seed_maze(3)
    assert base.cheese == (2, 2)
    moved = maze_panel.click_square(s, "cheese", (4, 4)).state
    assert moved.maze().cheese == (4, 4) and moved.cheese == (4, 4)
    removed = maze_panel.click_square(moved, "cheese", (4, 4)).state
    assert removed.maze().cheese is None
    walled = maze_panel.click_square(s, "wall", (1, 0)).state
    assert walled.walls == ((1, 0),) and not walled.maze().walls[1][0]
    back = maze_panel.click_square(walled, "wall", (1, 0)).state
    assert back.walls == () and back.maze() == base
    mouse = maze_panel.click_square(s, "mouse", (0, 4)).state
    assert mouse.maze().mouse == (0, 4)
    target = maze_panel.click_square(s, "target", (4, 0))
    assert target.state.steer.retarget_square == (4, 0) and "channels" in target.message


def test_bad_clicks_raise_clear_errors() -> None:
    s = ViewState(seed=3)
    with pytest.raises(MazeError, match="wall"):
        maze_panel.click_square(s, "cheese", (1, 1))
    with pytest.raises(MazeError, match="cannot share"):
        maze_panel.click_square(s, "mouse", (2, 2))
    out = maze_panel.click_square(s, "cheese", (7, 7))
    assert out.error and "padding" in out.message
    assert maze_panel.click_square(s, "target", (1, 1)).error


def test_pixel_clicks_use_the_frame_geometry() -> None:
    from mazewb.maze.geometry import FRAME_PIXELS, square_to_pixel_centre

    s = ViewState(seed=3)
    prow, pcol = square_to_pixel_centre((4, 4), 5, FRAME_PIXELS)
    assert maze_panel.click(s, "cheese", pcol, prow).state.maze().cheese == (4, 4)


def test_controls_update_the_state_and_validate() -> None:
    s = ViewState()
    s = state.apply_control(s, "seed", 7, LAYERS)
    assert s.seed == 7
    s = state.apply_control(s, "cv-coeff", -1, LAYERS)
    assert s.steer.cheese_coeff == -1.0
    wide = {"embedder.block2.res1.resadd_out": (128, 16, 16)}
    s = state.apply_control(s, "rt-channels", "55, 8 8", wide)
    assert s.steer.retarget_channels == (8, 55)
    with pytest.raises(StateError, match="channel"):
        state.apply_control(s, "channel", 40, LAYERS)  # the layer has 32 channels
    with pytest.raises(StateError):
        state.apply_control(s, "gc-lo", 5, LAYERS)  # above 'to'
    with pytest.raises(StateError, match="enter a value"):
        state.apply_control(s, "cv-coeff", None, LAYERS)
    # every control's value written back parses to the same state
    for control, value in state.controls_from_state(s).items():
        if control == "seed":
            continue  # a seed change clears the edits, by design
        assert state.apply_control(s, control, value, wide) == s, control


def test_navigation_by_seed_and_size() -> None:
    s = ViewState(seed=3)
    assert maze_panel.navigate(s, "next", "any").seed == 4
    assert maze_panel.navigate(s, "prev", "any").seed == 2
    with pytest.raises(StateError):
        maze_panel.navigate(ViewState(seed=0), "prev", "any")
    big = maze_panel.navigate(s, "size", 25)
    assert seed_maze(big.seed).size == 25 and big.seed >= 3
    nxt = maze_panel.navigate(big, "next", 25)
    assert nxt.seed > big.seed and seed_maze(nxt.seed).size == 25


def test_malformed_maze_json_is_refused_clearly() -> None:
    with pytest.raises(MazeError, match="not valid JSON"):
        maze_panel.import_maze(ViewState(), "{oops")
    with pytest.raises(MazeError, match="rows"):
        maze_panel.import_maze(
            ViewState(), '{"format": "mazewb-maze-v1", "size": 2, "rows": ["..", "."], "mouse": [0, 0]}'
        )
    good = seed_maze(5).with_cheese(seed_maze(5).open_cells()[-1])
    out = maze_panel.import_maze(ViewState(seed=3), good.to_json())
    assert out.state.maze() == good and not out.error


# --- the result cache and the jobs ---------------------------------------------------------------
def test_cache_is_bounded_and_computes_once_per_key() -> None:
    cache = ResultCache(max_bytes=10_000)
    calls = []

    def make(k: int):  # noqa: ANN202
        def compute() -> np.ndarray:
            calls.append(k)
            time.sleep(0.05)
            return np.zeros(500)  # 4 KB

        return compute

    threads = [threading.Thread(target=lambda: cache.get("a", make(1))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1]  # four concurrent requests, one computation
    cache.get("b", make(2))
    cache.get("c", make(3))  # 3 x 4 KB > 10 KB: the oldest goes
    assert "a" not in cache and "c" in cache and cache.nbytes <= 10_000


def test_cache_does_not_keep_failures() -> None:
    cache = ResultCache()
    with pytest.raises(ValueError):
        cache.get("k", lambda: (_ for _ in ()).throw(ValueError("bad")))
    assert cache.get("k", lambda: 5) == 5


def test_jobs_report_progress_and_can_be_cancelled() -> None:
    runner = JobRunner(workers=2)
    started = threading.Event()

    def slow(ctx: JobContext) -> int:
        for i in range(200):
            started.set()
            ctx.progress(i, 200, "step")
            time.sleep(0.01)
        return 1

    job_id = runner.submit("test", slow)
    started.wait(5)
    assert runner.get(job_id).state == "running"
    quick = runner.submit("test", lambda ctx: 42)  # another user's job is not held up
    deadline = time.time() + 5
    while runner.get(quick).state == "running" and time.time() < deadline:
        time.sleep(0.01)
    assert runner.get(quick).result == 42
    assert runner.cancel(job_id)
    while runner.get(job_id).state == "running" and time.time() < deadline:
        time.sleep(0.01)
    assert runner.get(job_id).state == "cancelled"
    failing = runner.submit("test", lambda ctx: (_ for _ in ()).throw(AnalysisError("no mazes")))
    bug = runner.submit("test", lambda ctx: (_ for _ in ()).throw(ValueError("secret detail")))
    while "running" in (runner.get(failing).state, runner.get(bug).state) and time.time() < deadline:
        time.sleep(0.01)
    assert runner.get(failing).state == "failed" and runner.get(failing).error == "no mazes"  # a user error
    assert runner.get(bug).state == "failed" and "internal error" in runner.get(bug).error  # a bug: not shown
    assert "secret" not in runner.get(bug).error
    assert runner.get("not-a-job") is None
    runner.shutdown()


# --- checkpoints -------------------------------------------------------------------------------------
def test_registry_loads_uploads_and_refuses_bad_files(tmp_path) -> None:  # noqa: ANN001
    from mazewb.app.registry import PolicyRegistry
    from mazewb.policy import CheckpointError, make_placeholder_checkpoint

    path = make_placeholder_checkpoint(tmp_path / "a.pt", seed=2)
    reg = PolicyRegistry(path, max_bytes=5 * 2**20)
    lp = reg.get("default")
    assert lp.untrained and lp.device == "CPU" and len(lp.key) == 64
    up = reg.add_upload(path.read_bytes(), "copy.pt")
    assert up.id == f"upload:{lp.key[:16]}" and reg.get(up.id).key == lp.key
    with pytest.raises(CheckpointError, match="no longer holds"):
        reg.get("upload:0000000000000000")
    with pytest.raises(CheckpointError, match="junk.pt"):
        reg.add_upload(b"not a checkpoint", "junk.pt")
    with pytest.raises(CheckpointError, match="over the limit"):
        reg.add_upload(b"0" * (6 * 2**20), "big.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        reg.get(f"path:{tmp_path / 'missing.pt'}")


def test_workbench_results_are_cached_by_checkpoint_maze_and_interventions(tmp_path) -> None:  # noqa: ANN001
    from mazewb.app.compute import Workbench
    from mazewb.policy import make_placeholder_checkpoint

    wb = Workbench(str(make_placeholder_checkpoint(tmp_path / "a.pt")))
    lp = wb.policy("default")
    maze = seed_maze(3)
    first = wb.behaviour(lp, maze)
    assert wb.behaviour(lp, maze) is first
    spec = SteerSpec(cheese_coeff=-1.0)
    original, patched, notes = wb.patched(lp, maze, spec)
    assert original is first and patched is not None and not notes
    assert wb.patched(lp, maze, replace(spec, retarget_value=1.0))[1] is patched  # unused setting: same key
    assert 0.0 <= patched.outcomes.p_cheese <= 1.0
    reach = wb.reach_cheese(lp, maze)
    assert reach.shape == (len(first.field.cells),) and np.all((reach >= 0) & (reach <= 1 + 1e-9))
    _, _, notes = wb.patched(lp, seed_maze(17), SteerSpec(top_right_coeff=1.0))  # a 25x25 maze
    assert notes and "zero" in notes[0]
    with pytest.raises(ValueError, match="same size"):
        wb.patched(lp, maze, SteerSpec(resample_channels=(1,), resample_source=0))


def test_bench_command_server_side(capsys, tmp_path) -> None:  # noqa: ANN001
    from mazewb.cli import main
    from mazewb.policy import make_placeholder_checkpoint

    ckpt = str(make_placeholder_checkpoint(tmp_path / "a.pt"))
    assert main(["bench-app", "--no-browser", "--seed", "3", "--repeats", "3", "--checkpoint", ckpt]) == 0
    out = capsys.readouterr().out
    assert "bare batched forward pass" in out and "vector field" in out


# --- loading checkpoints by server path ----------------------------------------------------------------
def test_registry_can_refuse_paths_but_not_uploads(tmp_path) -> None:  # noqa: ANN001
    from mazewb.app.registry import PolicyRegistry
    from mazewb.policy import CheckpointError, make_placeholder_checkpoint

    path = make_placeholder_checkpoint(tmp_path / "a.pt", seed=2)
    reg = PolicyRegistry(path, allow_paths=False)
    with pytest.raises(CheckpointError, match="switched off.*--allow-path-loading"):
        reg.get(f"path:{path}")
    assert reg.get("default").untrained  # the operator's own checkpoint
    assert reg.get(reg.add_upload(path.read_bytes(), "copy.pt").id).label == "uploaded copy.pt"
    assert PolicyRegistry(path).get(f"path:{path}").key == reg.get("default").key  # allowed by default


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("127.0.1.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.0.2.7", False),
        ("no-such-host.invalid", False),
    ],
)
def test_which_hosts_are_this_machine_only(host: str, loopback: bool) -> None:
    from mazewb.app.server import is_loopback

    assert is_loopback(host) is loopback


def _on_event(app, trigger: str, values: dict, states: dict) -> dict:  # noqa: ANN001
    """Fire the page's view-state callback as the browser does (POST to Dash's update
    endpoint) with ``values`` for some inputs and ``states``; returns the outputs it changed."""
    key = next(k for k in app.callback_map if k.startswith("..url.search..."))
    spec = app.callback_map[key]
    body = update_body(key, spec["inputs"], spec["state"], trigger, values, states)
    reply = app.server.test_client().post("/_dash-update-component", json=body)
    assert reply.status_code == 200, reply.data[:500]
    return reply.get_json()["response"]


def test_a_server_reachable_from_elsewhere_refuses_paths_in_the_page(tmp_path) -> None:  # noqa: ANN001
    import base64
    import json

    from plotly.utils import PlotlyJSONEncoder

    from mazewb.app.server import create_app
    from mazewb.policy import make_placeholder_checkpoint

    path = make_placeholder_checkpoint(tmp_path / "a.pt", seed=2)
    remote = create_app(str(path), host="0.0.0.0")
    assert not remote.workbench.registry.allow_paths
    assert "ckpt-path-off" in json.dumps(remote.layout, cls=PlotlyJSONEncoder)  # the Model tab says so
    # A link naming a server path: refused, with the reason, and the bundled agent shown instead.
    first = _on_event(remote, "url.search", {"url.search": f"?ckpt=path:{path}"}, {})
    notice = first["notice"]
    assert notice["className"] == "notice error"
    assert "switched off" in notice["children"] and "--allow-path-loading" in notice["children"]
    assert first["st-model"]["data"] == {"checkpoint": "default"}
    view = first["st-view"]["data"]
    # Typing a path on the Model tab and pressing Load: refused the same way.
    load = {"ckpt-load.n_clicks": 1}
    out = _on_event(remote, "ckpt-load.n_clicks", load, {"ckpt-path.value": str(path), "st-view.data": view})
    assert out["notice"]["className"] == "notice error" and "switched off" in out["notice"]["children"]
    assert "st-model" not in out  # the view keeps its checkpoint
    # Uploads still work.
    upload = "data:application/octet-stream;base64," + base64.b64encode(path.read_bytes()).decode()
    out = _on_event(
        remote,
        "ckpt-upload.contents",
        {"ckpt-upload.contents": upload},
        {"ckpt-upload.filename": "a.pt", "st-view.data": view},
    )
    assert out["notice"]["children"] == "Loaded uploaded a.pt." and out["st-model"]["data"]["checkpoint"].startswith(
        "upload:"
    )
    remote.workbench.jobs.shutdown()
    # The operator's flag, or a loopback address, allow it.
    for app in (create_app(str(path), host="0.0.0.0", allow_path_loading=True), create_app(str(path))):
        assert app.workbench.registry.allow_paths
        assert "ckpt-path-off" not in json.dumps(app.layout, cls=PlotlyJSONEncoder)
        out = _on_event(app, "url.search", {"url.search": f"?ckpt=path:{path}"}, {})
        assert out["st-model"]["data"] == {"checkpoint": f"path:{path}"}
        assert out["notice"]["className"] == "notice"  # no message
        app.workbench.jobs.shutdown()


def test_serve_passes_the_path_loading_flag(monkeypatch) -> None:  # noqa: ANN001
    import mazewb.app.server
    from mazewb.cli import main

    calls: list[dict] = []
    monkeypatch.setattr(mazewb.app.server, "serve", lambda **kw: calls.append(kw))
    assert main(["serve", "--host", "0.0.0.0"]) == 0
    assert main(["serve", "--host", "0.0.0.0", "--allow-path-loading"]) == 0
    assert [c["allow_path_loading"] for c in calls] == [False, True] and calls[0]["host"] == "0.0.0.0"
