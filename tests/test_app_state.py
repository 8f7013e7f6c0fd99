"""The app's view-state table, its event handlers and the server's answers to crafted requests,
without a browser: unit tests, hypothesis properties (random and crafted stores, URLs, clicks
and typed values give a valid state or a user error, nothing else), and crafted Dash requests
posted to ``/_dash-update-component`` with Flask's test client (never HTTP 500, never raw
exception text, no job left running)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mazewb.app import dispatch
from mazewb.app.layout import load_panels
from mazewb.app.panels import PANELS, TABS
from mazewb.app.state import (
    BY_CONTROL,
    CONTROL_IDS,
    FIELDS,
    SteerSpec,
    ViewState,
    apply_control,
    controls_from_state,
    from_query,
    from_slice,
    get_field,
    slice_of,
    state_from_dict,
    state_to_dict,
    to_query,
)
from mazewb.app.wire import update_body
from mazewb.errors import CheckpointError, MazewbError, StateError
from mazewb.policy.impala import ImpalaPolicy

LAYERS = {k: v for k, v in ImpalaPolicy(scale=1).hook_points().items() if len(v) == 3}
RAW_WORDS = ("Traceback", "Error:", "KeyError", "TypeError", "AttributeError", "OverflowError", "nan", 'File "')


class FakeServices:
    """What handlers may ask of the server, without loading anything."""

    registry = SimpleNamespace(max_bytes=1000, add_upload=lambda data, name: (_ for _ in ()).throw(
        CheckpointError(f"{name}: not a PyTorch checkpoint")))  # fmt: skip

    def layer_shapes(self, checkpoint: str) -> dict:
        return LAYERS

    def policy(self, checkpoint: str) -> Any:
        if checkpoint == "default":
            return SimpleNamespace(id="default", label="bundled agent")
        raise CheckpointError(f"cannot load {checkpoint!r}")


DISPATCHER = dispatch.Dispatcher(load_panels())
SERVICES = FakeServices()


# --- the table ---------------------------------------------------------------------------------------
def test_the_table_declares_every_field_once_with_unique_keys_and_controls() -> None:
    names = [f.name for f in FIELDS]
    assert len(set(names)) == len(names) == len({f.key for f in FIELDS})
    state_fields = {f for f in ViewState.__dataclass_fields__ if f != "steer"}
    steer_fields = {f"steer.{f}" for f in SteerSpec.__dataclass_fields__}
    assert set(names) == state_fields | steer_fields  # every field of the state is in the table
    assert len(CONTROL_IDS) == len(set(CONTROL_IDS))
    for f in FIELDS:
        assert f.kind.check(f.kind.to_json(f.default), f.label) == f.default, f.name  # defaults are valid


def test_tabs_come_from_the_panel_registry() -> None:
    assert TABS == PANELS[1:] and "behaviour" in TABS and "maze" not in TABS
    assert [p.name for p in load_panels()] == list(PANELS)
    assert from_query("?tab=stats").tab == "stats"
    with pytest.raises(StateError, match="tab must be one of"):
        from_query("?tab=maze")


def test_existing_links_keep_their_meaning() -> None:
    s = from_query("seed=95&cheese=6,6&tab=steer&cv=-1&rtch=8,55&walls=1,0_3,3&gc=-3,0")
    assert s.seed == 95 and s.cheese == (6, 6) and s.tab == "steer" and s.steer.cheese_coeff == -1.0
    assert s.steer.retarget_channels == (8, 55) and s.walls == ((1, 0), (3, 3)) and s.grid_cheese == (-3.0, 0.0)
    assert from_query(to_query(s)) == s


def test_a_full_state_round_trips_through_url_store_and_slices() -> None:
    s = ViewState(
        seed=3,
        cheese=(4, 4),
        walls=((1, 0),),
        tab="activations",
        layer="embedder.block3.res2.resadd_out",
        channel=7,
        steer=SteerSpec(cheese_coeff=-1.5, retarget_square=(2, 2), retarget_channels=(8, 55), ablate_channels=(3,)),
        grid_steps=7,
        overlays=("paths",),
    )
    assert from_query(to_query(s)) == s
    assert state_from_dict(json.loads(json.dumps(state_to_dict(s)))) == s
    for p in load_panels():
        sliced = from_slice(json.loads(json.dumps(slice_of(s, p.fields))), p.fields)
        assert all(get_field(sliced, n) == get_field(s, n) for n in p.fields), p.name


@pytest.mark.parametrize(
    "data, words",
    [
        ({"seed": "abc"}, "seed must be a whole number"),
        ({"seed": 10**12}, "seed must be between"),
        ({"walls": [[100, 100]]}, "wall row must be between 0 and 24"),
        ([1, 2], "must be an object"),
        ({"steer": [1]}, "steer must be an object"),
        ({"steer": {"cheese_coeff": 1e308}}, "cheese vector coefficient"),
        ({"steer": {"cheese_coeff": float("nan")}}, "finite"),
        ({"grid_steps": 30_000_000}, "grid steps must be between 2 and 11"),
        ({"seed": True}, "whole number"),
        ({"bogus": 1}, "unknown field"),
        ({"maze_rows": ["#"]}, "no open square"),
        ({"tab": ["steer"]}, "tab must be one of"),
        ({"stats_mazes": 10**9}, "number of mazes"),
    ],
)
def test_crafted_stores_are_refused_with_the_field_named(data: Any, words: str) -> None:
    with pytest.raises(StateError, match=words):
        state_from_dict(data)


def test_a_store_without_steer_is_the_default_interventions() -> None:
    data = state_to_dict(ViewState(seed=3))
    del data["steer"]
    assert state_from_dict(data) == ViewState(seed=3)


def test_controls_are_written_from_the_state_and_read_back() -> None:
    s = replace(ViewState(), steer=SteerSpec(cheese_coeff=-1.0, ablate_channels=(2, 5)), grid_cheese=(-1.0, 2.0))
    shown = controls_from_state(s)
    assert shown["cv-coeff"] == -1.0 and shown["ab-channels"] == "2,5" and (shown["gc-lo"], shown["gc-hi"]) == (-1, 2)
    for control, value in shown.items():
        if control != "seed":
            assert apply_control(s, control, value, LAYERS) == s, control
    assert apply_control(s, "seed", 0, LAYERS) == replace(s, seed=0)
    with pytest.raises(StateError, match="'from'"):
        apply_control(s, "gc-lo", 5, LAYERS)
    with pytest.raises(StateError, match="channel must be between 0 and 31"):
        apply_control(s, "channel", 40, LAYERS)


# --- event handlers, by trigger ----------------------------------------------------------------------
def handle(old: ViewState | None, trigger: str, values: dict | None = None) -> Any:
    return DISPATCHER.handle(old, trigger, values or {}, SERVICES)


def test_the_dispatcher_routes_each_trigger_to_its_handler() -> None:
    s = ViewState(seed=3)
    assert handle(None, "url.search", {"url.search": "?seed=3"}).state == s
    assert handle(s, "seed-next.n_clicks", {"seed-next.n_clicks": 1, "size.value": "any"}).state.seed == 4
    assert handle(s, "cv-coeff.value", {"cv-coeff.value": -1}).state.steer.cheese_coeff == -1
    typed = {"st-typed.data": {"control": "seed", "value": 3, "at": 1}}
    edited = replace(s, cheese=None)
    assert handle(edited, "st-typed.data", typed).state == s  # retyping the seed undoes the edits
    out = handle(s, "preset-cheese.n_clicks", {"preset-cheese.n_clicks": 1})
    assert out.state.steer.cheese_coeff == -1.0 and out.state.tab == "steer"
    assert handle(out.state, "steer-clear.n_clicks", {}).state.steer == SteerSpec()
    assert handle(s, "remove-cheese.n_clicks", {}).state.maze().cheese is None
    link = handle(None, "url.search", {"url.search": "?ckpt=path:/nope.pt&seed=3"})
    assert link.error and "could not be loaded" in link.message and link.state == s
    bad = handle(None, "url.search", {"url.search": "?seed=abc"})
    assert bad.error and "seed must be a whole number" in bad.message and bad.state == ViewState()
    with pytest.raises(StateError, match="nothing on this page"):
        handle(s, "no-such-button.n_clicks", {})
    with pytest.raises(StateError, match="typed value"):
        handle(s, "st-typed.data", {"st-typed.data": {"control": "tabs", "value": "x"}})


@pytest.mark.parametrize(
    "click, words",
    [
        ({"points": [{"x": float("nan"), "y": 3}]}, "not finite"),
        ({"points": [{"x": 1}]}, "no x and y"),
        ({"points": [{"x": 1e308, "y": 5}]}, "not finite"),
        ([1], "no point data"),
        ({"points": "x"}, "no point data"),
        ({"points": [{"x": "1", "y": 2}]}, "not finite"),
        ({"points": [{"x": True, "y": 2}]}, "not finite"),
    ],
)
def test_odd_clicks_are_user_errors(click: Any, words: str) -> None:
    s = ViewState(seed=3)
    for trigger in ("maze-graph.clickData", "vf-graph.clickData", "heat-graph.clickData"):
        with pytest.raises(StateError, match=words):
            handle(s, trigger, {trigger: click, "click-mode.value": "cheese"})


def test_the_attribution_square_is_one_with_a_choice() -> None:
    from mazewb.app.panels.activations import attribution_square
    from mazewb.app.state import seed_maze
    from mazewb.maze.graph import decision_square, neighbours

    maze = seed_maze(3)
    assert attribution_square(maze) == (decision_square(maze), "the decision square")
    no_ds = maze.with_cheese(maze.top_right)
    square, _ = attribution_square(no_ds)
    assert len(neighbours(no_ds, square)) > 1


# --- properties: random input gives a valid state or a user error ------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FIELD_NAMES = [f.name.split(".", 1)[-1] if f.name.startswith("steer.") else f.name for f in FIELDS]
STORE = st.dictionaries(st.sampled_from([f.name for f in FIELDS if "." not in f.name] + ["steer"]), JSON, max_size=6)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def valid(s: ViewState) -> None:
    """A state every part of the app can use: its maze builds and its link reads back."""
    s.maze()
    assert from_query(to_query(s)) == s


@PROPERTY
@given(st.one_of(JSON, STORE))
def test_random_stores_give_a_valid_state_or_a_user_error(data: Any) -> None:
    try:
        s = state_from_dict(data)
    except StateError:
        return
    try:
        s.maze()
    except MazewbError:
        return
    assert from_query(to_query(s)) == s


QUERY_VALUES = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["0", "-1", "1e308", "nan", "inf", "3,4", "100,100", "none", "2-ff", "1,2_3,4", "steer", "x,y"]),
    st.integers(-(10**13), 10**13).map(str),
)


@PROPERTY
@given(st.lists(st.tuples(st.sampled_from([f.key for f in FIELDS] + ["zz"]), QUERY_VALUES), max_size=5))
def test_random_links_give_a_valid_state_or_a_user_error(pairs: list) -> None:
    from urllib.parse import urlencode

    out = dispatch.load_url("?" + urlencode(pairs), SERVICES)
    valid(out.state)
    if out.error:
        assert not any(w in out.message for w in ("Traceback", "KeyError", "TypeError"))


TRIGGERS = sorted(DISPATCHER.events) + [f"{c}.value" for c in CONTROL_IDS] + ["st-typed.data", "url.search"]


@PROPERTY
@given(st.sampled_from(TRIGGERS), JSON, st.sampled_from(["cheese", "mouse", "wall", "target", None, 3]))
def test_random_events_give_a_valid_state_or_a_user_error(trigger: str, value: Any, mode: Any) -> None:
    old = ViewState(seed=3)
    values = {trigger: value, "click-mode.value": mode, "size.value": "any"}
    try:
        out = handle(old, trigger, values)
    except MazewbError:
        return
    valid(out.state)


@PROPERTY
@given(
    st.sampled_from(["maze-graph.clickData", "vf-graph.clickData", "heat-graph.clickData"]),
    st.fixed_dictionaries(
        {
            "points": st.lists(
                st.fixed_dictionaries({"x": JSON | st.floats(-600, 600), "y": st.floats(-600, 600)}), max_size=2
            )
        }
    )
    | JSON,
    st.sampled_from(["cheese", "mouse", "wall", "target"]),
)
def test_random_clicks_give_a_valid_state_or_a_user_error(trigger: str, click: Any, mode: str) -> None:
    try:
        out = handle(ViewState(seed=3), trigger, {trigger: click, "click-mode.value": mode})
    except MazewbError:
        return
    valid(out.state)


@PROPERTY
@given(st.sampled_from(list(BY_CONTROL)), JSON | st.floats() | st.text(max_size=30))
def test_random_control_values_give_a_valid_state_or_a_user_error(control: str, value: Any) -> None:
    try:
        s = apply_control(ViewState(seed=3), control, value, LAYERS)
    except StateError:
        return
    valid(s)
    for x in (s.steer.cheese_coeff, s.steer.top_right_coeff, s.steer.retarget_value, *s.grid_cheese):
        assert math.isfinite(x) and abs(x) <= 100


# --- crafted Dash requests against the real app ------------------------------------------------------
@pytest.fixture(scope="module")
def app(tmp_path_factory):  # noqa: ANN001, ANN201
    from mazewb.app.server import create_app
    from mazewb.policy import make_placeholder_checkpoint

    ckpt = make_placeholder_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", seed=1)
    app = create_app(str(ckpt))
    yield app
    app.workbench.jobs.shutdown()


def fire(app, output: str, trigger: str, values: dict | None = None, states: dict | None = None) -> tuple[int, Any]:  # noqa: ANN001
    """POST one callback as the browser does: the callback whose outputs include ``output``;
    ``values`` / ``states`` by ``"id.prop"`` (others None). Returns (status, response)."""
    values, states = values or {}, states or {}
    key = next(k for k in app.callback_map if output in k.strip(".").split("..."))
    spec = app.callback_map[key]
    body = update_body(key, spec["inputs"], spec["state"], trigger, values, states)
    reply = app.server.test_client().post("/_dash-update-component", json=body)
    return reply.status_code, (reply.get_json() or {}).get("response") if reply.status_code == 200 else reply.data


def shown_text(response: Any) -> str:
    return json.dumps(response)


def assert_clean(status: int, response: Any) -> None:
    assert status in (200, 204), (status, str(response)[:300])
    text = shown_text(response)
    for word in RAW_WORDS[:-2]:
        assert word not in text, text[:500]


def test_crafted_view_stores_never_500(app) -> None:  # noqa: ANN001
    _, first = fire(app, "st-view.data", "url.search", {"url.search": "?seed=3"})
    view = first["st-view"]["data"]
    no_steer = {k: v for k, v in view.items() if k != "steer"}
    for stored in (
        {**view, "seed": "abc"},
        {**view, "seed": 10**12},
        {**view, "walls": [[100, 100]]},
        [view],
        no_steer,
    ):
        values = {"seed-next.n_clicks": 1, "url.search": "?seed=3"}
        status, out = fire(app, "st-view.data", "seed-next.n_clicks", values, {"st-view.data": stored})
        assert_clean(status, out)
        assert "st-view" in out and state_from_dict(out["st-view"]["data"]).seed in (3, 4)
    status, out = fire(app, "st-view.data", "url.search", {"url.search": {"not": "text"}})
    assert_clean(status, out)
    assert out["notice"]["className"] == "notice error"


def test_odd_clicks_and_huge_coefficients_say_so_in_words(app) -> None:  # noqa: ANN001
    _, first = fire(app, "st-view.data", "url.search", {"url.search": "?seed=3"})
    view = first["st-view"]["data"]
    for click in (
        {"points": [{"x": float("nan"), "y": 3}]},
        {"points": [{"x": 1}]},
        {"points": [{"x": 1e308, "y": 1}]},
    ):
        status, out = fire(
            app, "st-view.data", "maze-graph.clickData", {"maze-graph.clickData": click},
            {"st-view.data": view, "click-mode.value": "cheese"},
        )  # fmt: skip
        assert_clean(status, out)
        assert out["notice"]["children"].startswith("the click was not understood")
    for control in ("cv-coeff", "tv-coeff", "rt-value", "gc-hi"):
        status, out = fire(app, "st-view.data", f"{control}.value", {f"{control}.value": 1e308}, {"st-view.data": view})
        assert_clean(status, out)
        assert "between -100 and 100" in out["notice"]["children"] and "nan" not in out["notice"]["children"]


def test_a_crafted_shards_store_starts_no_job(app) -> None:  # noqa: ANN001
    wb = app.workbench
    _, first = fire(app, "st-view.data", "url.search", {"url.search": "?seed=3&tab=shards"})
    shards = first["st-shards"]["data"]
    before = wb.jobs.running()
    for crafted in ({**shards, "grid_steps": 30_000_000}, {**shards, "grid_cheese": [-1e308, 1e308]}, [1], "x"):
        status, out = fire(
            app, "shards-job.data", "shards-run.n_clicks", {"shards-run.n_clicks": 1}, {"st-shards.data": crafted}
        )
        assert_clean(status, out)
        assert "shards-job" not in out and out["shards-message"]["className"] == "msg error"
    assert wb.jobs.running() == before
    status, out = fire(
        app, "stats-job.data", "stats-run.n_clicks", {"stats-run.n_clicks": 1},
        {"st-stats.data": {"checkpoint": "default", "stats_mazes": 10**9}},
    )  # fmt: skip
    assert_clean(status, out)
    assert "number of mazes must be between 10 and 100000" in out["stats-message"]["children"]
    status, out = fire(app, "rank-job.data", "rank-run.n_clicks", {"rank-run.n_clicks": 1},
                       {"st-activations.data": {"checkpoint": "default"}, "rank-n.value": 10**7})  # fmt: skip
    assert_clean(status, out)
    assert "between 4 and 500" in out["rank-message"]["children"]
    for job_id in ([1, 2], {"a": 1}, "x" * 10_000, None):
        status, out = fire(app, "stats-status.children", "stats-poll.n_intervals", {"stats-poll.n_intervals": 1},
                           {"stats-job.data": job_id})  # fmt: skip
        assert_clean(status, out)


def test_jobs_stop_when_cancelled_timed_out_or_abandoned() -> None:
    import time

    from mazewb.app.jobs import JobRunner

    def forever(ctx):  # noqa: ANN001, ANN202
        while True:
            ctx.progress(0, 1, "spinning")
            time.sleep(0.01)

    runner = JobRunner(workers=3, max_jobs=3, abandon_seconds=0.3)
    timed = runner.submit("t", forever, max_seconds=0.2)
    abandoned = runner.submit("t", forever)
    cancelled = runner.submit("t", forever)
    with pytest.raises(StateError, match="busy"):
        runner.submit("t", forever)
    assert runner.cancel(cancelled) and runner.get(cancelled).state == "cancelled"
    deadline = time.time() + 10
    while runner.running() and time.time() < deadline:
        time.sleep(0.05)
        runner.get(timed)  # the page of this one keeps polling
    assert runner.running() == 0
    assert runner.get(timed).state == "failed" and "time limit" in runner.get(timed).error
    assert runner._jobs[abandoned].state == "cancelled"  # nobody polled it
    runner.shutdown()


def test_every_callback_answers_crafted_values_without_500(app) -> None:  # noqa: ANN001
    """Each callback of the page, posted with odd values in every input and state: HTTP 200/204,
    no raw exception text in what comes back, and every refusal a user error (no bug logged)."""
    import logging

    logged: list[str] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = lambda record: logged.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("mazewb").addHandler(handler)
    odd = [None, "abc", 10**12, [1, 2], {"points": [{"x": float("nan")}]}, {"seed": "abc"}, -1]
    for key, spec in app.callback_map.items():
        if "callback" not in spec:  # client-side callbacks run in the browser
            continue
        for k, value in enumerate(odd):
            values = {f"{i['id']}.{i['property']}": value for i in spec["inputs"]}
            states = {f"{s['id']}.{s['property']}": odd[(k + 1) % len(odd)] for s in spec["state"]}
            trigger = next(iter(values), "")
            output = key.strip(".").split("...")[0]
            status, out = fire(app, output, trigger, values, states)
            assert_clean(status, out)
    logging.getLogger("mazewb").removeHandler(handler)
    assert not logged, logged  # every refusal was a user error: no bug logged


def test_upload_of_random_bytes_says_not_a_checkpoint(app) -> None:  # noqa: ANN001
    import base64
    import os

    _, first = fire(app, "st-view.data", "url.search", {"url.search": ""})
    data = "data:application/octet-stream;base64," + base64.b64encode(os.urandom(3000)).decode()
    status, out = fire(app, "st-view.data", "ckpt-upload.contents", {"ckpt-upload.contents": data},
                       {"ckpt-upload.filename": "junk.pt", "st-view.data": first["st-view"]["data"]})  # fmt: skip
    assert_clean(status, out)
    assert "not a PyTorch checkpoint" in out["notice"]["children"] and "pickled" not in out["notice"]["children"]
    status, out = fire(app, "st-view.data", "ckpt-upload.contents", {"ckpt-upload.contents": "data:x;base64,@@@"},
                       {"st-view.data": first["st-view"]["data"]})  # fmt: skip
    assert_clean(status, out)
    assert "base64" in out["notice"]["children"]


def test_the_region_is_shown_and_outcome_rows_add_up(app) -> None:  # noqa: ANN001
    from mazewb.app.panels.steer import steer_view
    from mazewb.app.present import outcomes_table

    wb = app.workbench
    lp = wb.policy("default")
    s = ViewState(seed=3, steer=SteerSpec(cheese_coeff=-1.0, retarget_square=(4, 0), retarget_channels=(1, 2)))
    fig_o, fig_p, fig_d, table, rt_info, message, cls = steer_view(wb, lp, s)
    text = json.dumps(table.to_plotly_json(), default=str)
    assert "P(reach the target (4, 0))" in text and "total" in text and "exactly one of the four" in text
    assert any(t.name == "retarget square" for t in fig_p.data)  # the target in the vector fields
    beh = wb.behaviour(lp, s.maze())
    assert abs(sum(beh.outcomes.partition().values()) - 1) < 1e-6
    assert "1.000" in json.dumps(outcomes_table({"P": beh.outcomes}).to_plotly_json(), default=str)


def test_serve_runs_on_waitress_in_one_process(monkeypatch, capsys) -> None:  # noqa: ANN001
    import waitress

    import mazewb.app.server as server

    calls: list[dict] = []
    monkeypatch.setattr(waitress, "serve", lambda app, **kw: calls.append(kw))
    monkeypatch.setattr(server, "create_app", lambda *a, **kw: SimpleNamespace(
        workbench=SimpleNamespace(registry=SimpleNamespace(allow_paths=True), policy=lambda c: (_ for _ in ()).throw(
            CheckpointError("none"))), server=object(), run=lambda **kw: calls.append({"dev": True})))  # fmt: skip
    server.serve(port=8123)
    assert calls == [{"host": "127.0.0.1", "port": 8123, "threads": server.THREADS, "ident": "mazewb",
                      "channel_timeout": 120}]  # fmt: skip
    assert "waitress" in capsys.readouterr().out


def test_the_panel_example_in_the_docs_is_one_file_and_one_line(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    """docs/app.md's example panel, registered by adding its name to PANELS: it is a tab, its
    event changes the view, its lazy view draws from its own store."""
    import re
    import sys
    import types
    from pathlib import Path

    import mazewb.app.panels as registry
    from mazewb.app.server import create_app
    from mazewb.policy import make_placeholder_checkpoint

    doc = (Path(__file__).parents[1] / "docs" / "app.md").read_text()
    source = re.search(r"## Adding a panel.*?```python\n(.*?)```", doc, re.S).group(1)
    module = types.ModuleType("mazewb.app.panels.fork")
    exec(compile(source, "docs/app.md", "exec"), module.__dict__)  # noqa: S102 - our own docs
    monkeypatch.setitem(sys.modules, "mazewb.app.panels.fork", module)
    monkeypatch.setattr(registry, "PANELS", (*registry.PANELS, "fork"))  # the one line
    monkeypatch.setattr(registry, "TABS", registry.PANELS[1:])
    app = create_app(str(make_placeholder_checkpoint(tmp_path / "a.pt")), panels=registry.PANELS)
    try:
        assert from_query("?tab=fork").tab == "fork"
        _, first = fire(app, "st-view.data", "url.search", {"url.search": "?seed=3&tab=fork"})
        assert first["tabs"]["value"] == "fork" and "st-fork" in first
        view = first["st-view"]["data"]
        status, out = fire(app, "fork-text.children", "st-fork.data", {"st-fork.data": first["st-fork"]["data"],
                                                                        "tabs.value": "fork"})  # fmt: skip
        assert status == 200 and out["fork-text"]["children"] == "decision square: (0, 2)"
        status, out = fire(app, "st-view.data", "fork-remove.n_clicks", {"fork-remove.n_clicks": 1, "url.search": ""},
                           {"st-view.data": view})  # fmt: skip
        assert status == 200 and "cheese=none" in out["url"]["search"]
    finally:
        app.workbench.jobs.shutdown()


def test_a_control_changed_during_an_earlier_event_is_not_undone() -> None:
    """The tab clicked (or a box ticked) while an earlier event was in flight: Dash drops that
    click's own answer, so the next event brings the page's value; it must keep it."""
    s = ViewState(seed=3)
    shown = controls_from_state(s)
    page = {f"{c}.value": v for c, v in shown.items()} | {"tabs.value": "steer", "overlays.value": ["paths"]}
    typed = {"st-typed.data": {"control": "cv-coeff", "value": 2, "at": 1}}
    out = handle(s, "st-typed.data", page | typed).state
    assert out.tab == "steer" and out.steer.cheese_coeff == 2 and out.seed == 3
    assert controls_from_state(out)["overlays"] == ["paths"]
    out = handle(s, "remove-cheese.n_clicks", page | {"remove-cheese.n_clicks": 1}).state
    assert out.tab == "steer" and out.maze().cheese is None
    assert handle(s, "remove-cheese.n_clicks", {f"{c}.value": v for c, v in shown.items()}).state.tab == s.tab
