"""The zoo in the app without a browser: the server's zoo listing (names only, never paths), the
new view-state fields (``cmp``, ``cn``), the agent selector and agent-B handlers, the compare
view and the region-curve job."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from mazewb import plots
from mazewb.app.compute import Workbench
from mazewb.app.dispatch import Dispatcher
from mazewb.app.jobs import JobCancelled, JobContext
from mazewb.app.layout import load_panels
from mazewb.app.panels import compare, model
from mazewb.app.state import ViewState, from_query, state_from_dict, state_to_dict, to_query
from mazewb.app.zoo import Zoo
from mazewb.errors import CheckpointError, ConfigError, StateError
from mazewb.policy import ImpalaPolicy, make_placeholder_checkpoint
from mazewb.policy.checkpoint import save_policy

SEED = 3  # a 5x5 level: fast vector fields


def region1_agent(folder, name: str = "region1"):  # noqa: ANN001, ANN201
    """A randomly initialised agent whose card says it was trained on region 1."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        policy = ImpalaPolicy(scale=1)
    card = {"cheese_region": 1, "samples": 1234, "eval": {"in_distribution": {"p_cheese": 0.5}}}
    return save_policy(policy, folder / f"{name}.pt", card)


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory):  # noqa: ANN001, ANN201
    folder = tmp_path_factory.mktemp("zoo")
    region1_agent(folder)
    (folder / "bad name!.pt").write_bytes(b"not a checkpoint")  # an odd name: not listed
    (folder / "notes.md").write_text("not an agent")
    return folder


@pytest.fixture(scope="module")
def wb(tmp_path_factory, zoo_dir):  # noqa: ANN001, ANN201
    default = make_placeholder_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", seed=1)
    bench = Workbench(str(default))
    bench.registry.zoo = Zoo(zoo_dir, default)
    yield bench
    bench.jobs.shutdown()


# --- the zoo listing -----------------------------------------------------------------------------
def test_zoo_lists_the_default_and_the_folder_by_name(wb) -> None:  # noqa: ANN001
    entries = wb.registry.zoo.entries()
    assert [e.checkpoint for e in entries] == ["default", "zoo:region1"]
    default, region1 = entries
    assert default.untrained and default.region is None
    assert (region1.name, region1.region, region1.p_cheese, region1.samples) == ("region1", 1, 0.5, 1234)
    assert region1.label == "region1 (region 1)"


def test_zoo_names_are_looked_up_never_read_as_paths(wb, zoo_dir) -> None:  # noqa: ANN001
    zoo = wb.registry.zoo
    assert zoo.path("region1") == zoo_dir / "region1.pt"
    for bad in ("../region1", "/etc/passwd", "region1.pt/..", "", "x" * 200, "bad name!", "missing"):
        with pytest.raises(CheckpointError):
            zoo.path(bad)
    lp = wb.policy("zoo:region1")
    assert lp.region == 1 and lp.label.startswith("zoo agent region1")
    with pytest.raises(CheckpointError):
        wb.policy("zoo:../tiny")


def test_zoo_folder_must_exist_and_is_bounded(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError):
        Zoo(tmp_path / "nowhere")
    from mazewb.app import zoo as zoo_module

    for i in range(zoo_module.MAX_AGENTS + 3):
        (tmp_path / f"a{i:02d}.pt").write_bytes(b"x")
    assert len(Zoo(tmp_path).paths()) == zoo_module.MAX_AGENTS
    unreadable = Zoo(tmp_path).entries()[1]
    assert unreadable.error  # listed with the reason, not loadable


# --- the view-state fields -----------------------------------------------------------------------
def test_compare_and_curve_fields_round_trip_through_the_link() -> None:
    s = replace(ViewState(), checkpoint="zoo:region1", compare="default", curve_mazes=50, tab="compare")
    q = to_query(s)
    assert "ckpt=zoo:region1" in q and "cmp=default" in q and "cn=50" in q
    assert from_query(q) == s
    assert state_from_dict(state_to_dict(s)) == s
    assert to_query(ViewState()) == ""  # defaults stay out of links


@pytest.mark.parametrize("query", ["cn=5", "cn=3000", "cn=ten", "cmp=", "cmp=/etc/passwd", "ckpt=zoo", "tab=zoo"])
def test_bad_zoo_fields_are_refused(query: str) -> None:
    with pytest.raises(StateError):
        from_query(query)


def test_store_values_of_the_new_fields_are_validated() -> None:
    data = state_to_dict(ViewState())
    for key, bad in (("compare", 5), ("compare", "other"), ("curve_mazes", 10**9), ("curve_mazes", True)):
        with pytest.raises(StateError):
            state_from_dict({**data, key: bad})


# --- handlers ------------------------------------------------------------------------------------
def test_agent_b_defaults_to_the_first_other_agent() -> None:
    assert compare.agent_b(["default", "zoo:region1"], "default", None) == "zoo:region1"
    assert compare.agent_b(["default", "zoo:region1"], "zoo:region1", None) == "default"
    assert compare.agent_b(["default"], "default", None) == "default"
    assert compare.agent_b(["default", "zoo:region1"], "default", "default") == "default"


def test_the_selectors_are_controls_of_the_declared_table(wb) -> None:  # noqa: ANN001
    """The agent selector (every tab) sets the checkpoint, agent B's the compare field; both
    validated by the table's kind, and the link carries them."""
    disp = Dispatcher(load_panels())
    s = ViewState(seed=SEED)
    out = disp.handle(s, "agent-select.value", {"agent-select.value": "zoo:region1"}, wb)
    assert out.state.checkpoint == "zoo:region1"
    out = disp.handle(out.state, "compare-agent.value", {"compare-agent.value": "default"}, wb)
    assert (out.state.checkpoint, out.state.compare) == ("zoo:region1", "default")
    assert "ckpt=zoo:region1" in to_query(out.state) and "cmp=default" in to_query(out.state)
    same = disp.handle(out.state, "agent-select.value", {"agent-select.value": None}, wb)
    assert same.state == out.state  # a menu that lost its value changes nothing
    for control, bad in (("agent-select", "/etc/passwd"), ("agent-select", 3), ("compare-agent", ["x"])):
        with pytest.raises(StateError):
            disp.handle(out.state, f"{control}.value", {f"{control}.value": bad}, wb)
    loaded = disp.handle(None, "url.search", {"url.search": to_query(out.state)}, wb).state
    assert loaded == out.state
    bad = disp.handle(None, "url.search", {"url.search": "?ckpt=zoo:missing"}, wb)
    assert bad.state.checkpoint == "default" and bad.error  # a name the server does not list


def test_zoo_table_links_carry_the_view_under_each_agent(wb) -> None:  # noqa: ANN001
    s = ViewState(seed=SEED, tab="model")
    table = model.zoo_table(wb.registry.zoo.entries(), s)
    text = str(table.to_plotly_json())
    assert "region1" in text and "0.500" in text and "1,234" in text and "top-right 1x1" in text
    assert f"?ckpt=zoo%3Aregion1&seed={SEED}&tab=model" in text or f"?ckpt=zoo:region1&seed={SEED}&tab=model" in text
    opts = model.agent_options(wb.registry.zoo.entries(), "upload:0123456789abcdef", "uploaded x.pt")
    assert [o["value"] for o in opts] == ["default", "zoo:region1", "upload:0123456789abcdef"]


# --- the compare view and the region curve -------------------------------------------------------
def test_compare_view_draws_both_agents_on_the_edited_maze(wb) -> None:  # noqa: ANN001
    s = ViewState(seed=SEED, cheese=(4, 4), tab="compare")
    vf_a, vf_b, table, message, _ = compare.compare_view(wb, wb.policy("default"), s)
    assert not message
    assert "A: default" in vf_a.layout.title.text and "B: region1" in vf_b.layout.title.text
    assert "region 1" in vf_b.layout.title.text
    assert any((t.name or "").startswith(plots.REGION_NAME) for t in vf_b.data)  # B's region outlined
    header = table.data[0].header.values
    assert list(header) == ["outcome", "A: default", "B: region1"]
    options, b = compare.b_options(wb, s)
    assert b == "zoo:region1" and [o["value"] for o in options] == ["default", "zoo:region1"]
    same = compare.compare_view(wb, wb.policy("default"), replace(s, compare="default"))
    assert "B: default" in same[1].layout.title.text and "same agent" in same[3]
    options, b = compare.b_options(wb, replace(s, checkpoint="zoo:region1", compare="default"))
    assert b == "default" and len(options) == 2


def test_region_curve_needs_two_agents_with_a_region(wb) -> None:  # noqa: ANN001
    usable, skipped = compare.curve_agents(wb.registry.zoo)
    assert [e.name for e in usable] == ["region1"] and skipped == ["default"]
    from mazewb.app.state import slice_of

    with pytest.raises(StateError, match="at least two"):
        compare.start_curve(wb, slice_of(ViewState(), compare.FIELDS))


def test_region_curve_job_reports_progress_and_stops_when_cancelled(tmp_path) -> None:  # noqa: ANN001
    ctx = JobContext()
    ex = compare._JobExecutor(ctx, 4)
    seen = []
    assert ex.map(lambda p, chunk, **k: seen.append((ctx.done, ctx.total)) or len(chunk), None, [[1], [2, 3]]) == [1, 2]
    assert seen == [(0, 4), (1, 4)]
    ctx._cancel.set()
    with pytest.raises(JobCancelled):
        ex.map(lambda p, chunk, **k: 0, None, [[1]])


def test_region_curve_job_over_a_two_agent_zoo(tmp_path) -> None:  # noqa: ANN001
    region1_agent(tmp_path)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(8)
        policy = ImpalaPolicy(scale=1)
    save_policy(policy, tmp_path / "region25.pt", {"cheese_region": 25})
    bench = Workbench(str(make_placeholder_checkpoint(tmp_path / "tiny.pt", seed=1)))
    try:
        bench.registry.zoo = Zoo(tmp_path, tmp_path / "tiny.pt")
        from mazewb.app.state import slice_of

        job = compare.start_curve(bench, slice_of(ViewState(curve_mazes=10), compare.FIELDS))
        ctx = JobContext()
        table, skipped, n = job(ctx)
        assert list(table["agent"]) == ["region1", "region25"] and skipped == ["default"] and n == 10
        assert ctx.total == 2 and ctx.done == 1  # one chunk of 10 seeds per agent
        shown, fig = compare.show_curve((table, skipped, n))
        assert len(fig.data) == 4 and "region25" in str(shown.to_plotly_json())
    finally:
        bench.jobs.shutdown()
