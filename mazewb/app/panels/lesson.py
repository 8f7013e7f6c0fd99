"""The Lesson tab: a lesson played step by step on the live agent (``mazewb.lessons``).

A step sets the whole view (maze, edits, interventions, layer and channel, heatmap: the other
tabs and the maze on the left show it live) and this tab shows its caption with live numbers,
its figures, what to look for, and a question whose answer is revealed on a click. Previous /
next / reset are events (pure handlers: the state a step sets); the URL names the lesson and
the step (``?lesson=NAME&step=K``), so a teacher can project a step or send it. The student
can change anything; "Reset this step" brings the step's view back. What the tab shows is
``mazewb.lessons.player.LessonPlayer.page``; nothing here computes a number.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import plotly.graph_objects as go
from dash import Dash, Input, Output, State, callback_context, dcc, html, no_update

from mazewb.app import ids
from mazewb.app import widgets as w
from mazewb.app.guard import guarded
from mazewb.app.panel import Event, EventContext, Outcome, PageConfig, Panel, lazy_view
from mazewb.app.present import present
from mazewb.app.state import FIELDS as STATE_FIELDS
from mazewb.app.state import ViewState, from_slice
from mazewb.errors import MazewbError, user_message
from mazewb.lessons.library import LessonLibrary, lesson_library
from mazewb.lessons.player import LessonPlayer, Position, parse_step

NAME = "lesson"
PICKER, START, PREV, NEXT, RESET, REVEAL, TO_TAB, LEAVE = (
    "lesson-picker",
    "lesson-start",
    "lesson-prev",
    "lesson-next",
    "lesson-reset",
    "lesson-reveal",
    "lesson-to-tab",
    "lesson-leave",
)
HEAD, NOTICE, CAPTION, FIGURES, LOOK_FOR, QUESTION, ANSWER, LINK, CHANGED, BODY, INTRO = (
    "lesson-head",
    "lesson-notice",
    "lesson-caption",
    "lesson-figures",
    "lesson-look-for",
    "lesson-question",
    "lesson-answer",
    "lesson-link",
    "lesson-changed",
    "lesson-body",
    "lesson-intro",
)
NOTICE_BOX = "lesson-notice-box"
KEY_FIELDS = ("lesson", "lesson_step")
FIELDS = tuple(f.name for f in STATE_FIELDS)  # all of them: "you changed the view" compares the whole view
MAZE_KINDS = ("maze", "field", "steered", "diff", "channel")


# --- the lessons and the player of a server -------------------------------------------------------


def library(services: Any) -> LessonLibrary:
    """The server's lessons: ``serve --lessons DIR`` sets them at start; else the built-in ones
    (loaded on first use)."""
    found = getattr(services, "lessons", None)
    if found is None:
        found = lesson_library()
        try:
            services.lessons = found
        except AttributeError:  # a services object without attributes (tests): no caching
            pass
    return found


def player(services: Any) -> LessonPlayer:
    """The lessons played on the server's own agent (a lesson's numbers are the loaded agent's,
    whichever checkpoint the student switches to)."""
    return LessonPlayer(library(services), services.policy("default").policy)


# --- events: pure handlers of the view state ----------------------------------------------------------


def open_step(s: ViewState, name: str, k: int, services: Any) -> ViewState:
    """The view step ``k`` of lesson ``name`` sets, with this tab open (``k`` clamped)."""
    play = player(services)
    lesson = play.lesson(name)
    k = min(max(int(k), 1), len(lesson.steps))
    state = play.step_state(name, k)
    return replace(state, checkpoint="default", tab=NAME, lesson=lesson.name, lesson_step=k)


def _position(s: ViewState) -> tuple[str, int]:
    if not s.lesson:
        raise MazewbError("no lesson is open: choose one above")
    return s.lesson, max(s.lesson_step, 1)


def on_start(s: ViewState, _: Any, c: EventContext) -> ViewState:
    """Start the lesson chosen in the picker at its first step. (A button, not the picker
    itself: a dropdown also changes its value when its options are redrawn, and such a change
    must not move the view.)"""
    value = c.get(PICKER)
    if not value:
        raise MazewbError("choose a lesson first")
    if not isinstance(value, str):
        raise MazewbError("choose a lesson from the list")
    return open_step(s, value, 1, c.services)


def on_prev(s: ViewState, _: Any, c: EventContext) -> ViewState:
    name, k = _position(s)
    return open_step(s, name, k - 1, c.services)


def on_next(s: ViewState, _: Any, c: EventContext) -> ViewState:
    name, k = _position(s)
    return open_step(s, name, k + 1, c.services)


def on_reset(s: ViewState, _: Any, c: EventContext) -> ViewState:
    name, k = _position(s)
    return open_step(s, name, k, c.services)


def on_to_tab(s: ViewState, _: Any, c: EventContext) -> ViewState:
    """Open the tab the step's author chose (its figures live, in the workbench's own views)."""
    name, k = _position(s)
    step = player(c.services).step_state(name, k)
    return replace(s, tab=step.tab if step.tab != NAME else "behaviour")


def on_leave(s: ViewState, _: Any, c: EventContext) -> ViewState:  # noqa: ARG001
    return replace(s, lesson="", lesson_step=0)


def on_link(s: ViewState, services: Any) -> ViewState | Outcome:
    """A link naming a lesson: ``?lesson=NAME&step=K`` alone opens the step as its author set it
    up; with other view parameters it keeps them (the student's own view of that step). An
    unknown lesson or a step out of range is said in the notice line."""
    if not s.lesson:
        return s
    try:
        lesson = library(services).get(s.lesson)
    except MazewbError as exc:
        return Outcome(replace(s, lesson="", lesson_step=0), user_message(exc), True)
    k, notice = parse_step(s.lesson_step or 1, len(lesson.steps))
    bare = replace(s, lesson="", lesson_step=0, tab=ViewState().tab)
    if bare == ViewState():  # only the lesson and the step (and maybe the tab): the step's own view
        try:
            return Outcome(open_step(s, lesson.name, k, services), notice)
        except MazewbError as exc:
            return Outcome(replace(s, lesson="", lesson_step=0), user_message(exc), True)
    return Outcome(replace(s, lesson_step=k), notice)


EVENTS = (
    Event(START, "n_clicks", on_start, states=((PICKER, "value"),), reset=True),
    Event(PREV, "n_clicks", on_prev, reset=True),
    Event(NEXT, "n_clicks", on_next, reset=True),
    Event(RESET, "n_clicks", on_reset, reset=True),
    Event(TO_TAB, "n_clicks", on_to_tab, reset=True),
    Event(LEAVE, "n_clicks", on_leave, reset=True),
)


# --- layout ------------------------------------------------------------------------------------------


def layout(s: ViewState, config: PageConfig) -> html.Div:  # noqa: ARG001
    return html.Div(
        [
            html.Div(
                [
                    w.field(
                        "Lesson",
                        dcc.Dropdown(
                            id=PICKER,
                            options=[],
                            value=None,
                            clearable=False,
                            placeholder="choose a lesson",
                            style={"width": "420px"},
                        ),
                    ),
                    html.Button("Start", id=START, n_clicks=None, className="primary"),
                    html.Button("End lesson", id=LEAVE, n_clicks=None),
                ],
                className="controls",
            ),
            w.message(ids.message(NAME)),
            w.key_store(NAME),
            w.message(ids.message("lesson-view")),
            w.key_store("lesson-view"),
            html.Div(
                "Lessons walk you through what this agent learned, one step at a time, on the live agent: every "
                "number is computed now. Choose one above and press Start, or open a link like ?lesson=shards&step=1.",
                id=INTRO,
                className="hint",
            ),
            html.Div(
                [
                    html.H3(id=HEAD),
                    html.Div(
                        [
                            html.Button("← Previous", id=PREV, n_clicks=None),
                            html.Button("Reset this step", id=RESET, n_clicks=None),
                            html.Button("Next →", id=NEXT, n_clicks=None, className="primary"),
                            html.Button("Open this step's tab", id=TO_TAB, n_clicks=None),
                        ],
                        className="controls lesson-nav",
                    ),
                    html.Div(id=CHANGED, className="hint"),
                    html.Div(dcc.Markdown(id=NOTICE), id=NOTICE_BOX, className="msg"),
                    dcc.Markdown(id=CAPTION, className="lesson-caption"),
                    html.Div(id=FIGURES),
                    html.H4("Look for"),
                    dcc.Markdown(id=LOOK_FOR),
                    html.H4("Question"),
                    dcc.Markdown(id=QUESTION),
                    html.Button("Show the answer", id=REVEAL, n_clicks=None),
                    dcc.Markdown(id=ANSWER, className="lesson-answer", style={"display": "none"}),
                    html.P(["Link to this step: ", html.Code(id=LINK)], className="hint"),
                ],
                id=BODY,
                style={"display": "none"},
            ),
        ],
        className="tab-content",
    )


# --- callbacks -------------------------------------------------------------------------------------


def _figure(kind: str, figure: go.Figure) -> go.Figure:
    fig = go.Figure(figure)  # a copy: the rendered step is cached and shared
    return present(fig, 460, maze=kind in MAZE_KINDS)


def register(app: Dash, wb: Any) -> None:
    def draw(lp: Any, s: ViewState) -> tuple:  # noqa: ARG001 - a lesson runs on the server's agent
        play = player(wb)
        options = [{"label": x.title, "value": x.name} for x in play.library.lessons.values()]
        if not s.lesson:
            return options, {"display": "none"}, {}, "", "", "", [], "", "", "", True, True, ""
        name, k = _position(s)
        page = play.page(Position(name, k))
        view = page.step
        notice_class = "" if not view.notice else ("msg info" if view.expected else "msg error")
        figures = [
            dcc.Graph(
                id=f"lesson-figure-{i}",
                figure=_figure(f.kind, f.figure),
                config={"displaylogo": False},
                className="lesson-figure",
            )
            for i, f in enumerate(view.figures)
        ]
        return (
            options,
            {},
            {"display": "none"},
            f"Step {view.k} of {view.steps}: {view.title}",
            view.notice,
            view.caption,
            figures,
            view.look_for,
            view.question,
            view.answer,
            not page.has_prev,
            not page.has_next,
            notice_class,
        )

    lazy_view(
        app,
        wb,
        NAME,
        PANEL,
        [
            Output(PICKER, "options"),
            Output(BODY, "style"),
            Output(INTRO, "style"),
            Output(HEAD, "children"),
            Output(NOTICE, "children"),
            Output(CAPTION, "children"),
            Output(FIGURES, "children"),
            Output(LOOK_FOR, "children"),
            Output(QUESTION, "children"),
            Output(ANSWER, "children"),
            Output(PREV, "disabled"),
            Output(NEXT, "disabled"),
            Output(NOTICE_BOX, "className"),
        ],
        draw,
        key_fields=KEY_FIELDS,
    )

    def changed(lp: Any, s: ViewState) -> tuple:  # noqa: ARG001
        if not s.lesson:
            return "", ""
        name, k = _position(s)
        step = player(wb).step_state(name, k)
        link = f"?lesson={name}&step={k}"
        ours = replace(s, tab=NAME)
        theirs = replace(step, tab=NAME, lesson=name, lesson_step=k)
        if ours == theirs:
            return "", link
        return (
            "You have changed the view since this step opened: the text above describes the step's own view "
            "(its numbers are for it). Reset this step to go back.",
            link,
        )

    lazy_view(app, wb, "lesson-view", PANEL, [Output(CHANGED, "children"), Output(LINK, "children")], changed)

    @app.callback(
        Output(PICKER, "value"),
        Input(ids.slice_store(NAME), "data"),
        State(PICKER, "value"),
    )
    def show_lesson(data: Any, current: Any) -> Any:
        """The picker shows the open lesson."""
        try:
            lesson = from_slice(data, FIELDS).lesson or None
        except MazewbError:
            return no_update
        return no_update if lesson == current else lesson

    @app.callback(
        Output(ANSWER, "style"),
        Output(REVEAL, "children"),
        Input(REVEAL, "n_clicks"),
        Input(ANSWER, "children"),
        State(ANSWER, "style"),
    )
    @guarded(2, 1)
    def reveal(_clicks: Any, _answer: Any, style: Any) -> tuple:
        """The answer button toggles the answer; a new step's answer starts hidden."""
        hidden = isinstance(style, dict) and style.get("display") == "none"
        shown = callback_context.triggered_id == REVEAL and hidden
        return ({} if shown else {"display": "none"}), ("Hide the answer" if shown else "Show the answer")


PANEL = Panel(
    name=NAME,
    label="Lesson",
    layout=layout,
    fields=FIELDS,
    events=EVENTS,
    register=register,
    on_link=on_link,
)
