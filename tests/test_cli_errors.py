"""The CLI's error contract: a user error is exactly one line ``mazewb CMD: error: ...`` on stderr
and exit 2; a bug propagates with its traceback (exit 1); a closed pipe ends quietly.

Most checks run ``mazewb.cli.main`` in-process (fast); two run it in a subprocess (exit status,
traceback, closed pipe). The hostile checkpoints include the issue's reproduce file (a 10**12
element stride-0 tensor)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import mazewb.cli as cli
from mazewb import Maze
from mazewb.errors import MAX_MESSAGE_CHARS

ROOT = Path(__file__).resolve().parents[1]
ONE_LINE = r"^mazewb( [\w-]+)?: error: [^\n]+\n$"


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``mazewb ARGV`` in this process: (exit code, stdout, stderr)."""
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli")
    base = json.loads(Maze.from_strings(["C.#", ".#.", "M.."]).to_json())
    texts = {
        "deep.json": "[" * 30_000 + "]" * 30_000,
        "digits.json": '{"size": ' + "9" * 5000 + "}",
        "negative.json": json.dumps({**base, "size": -13}),
        "newline-key.json": json.dumps({**base, "x\nTraceback (most recent call last):\n  y": 1}),
        "many-keys.json": json.dumps({**base, **{f"k{i}": 0 for i in range(5000)}}),
        "cheese-on-wall.json": json.dumps({**base, "cheese": [2, 2]}),
        "not-json.json": "{maze",
        "interventions-unknown.json": '[{"kind": "add", "hook": "x"}]',
        "interventions-deep.json": "[" * 1000 + "]" * 1000,
        "random.pt": "".join(map(chr, range(32, 127))) * 50,
    }
    for name, text in texts.items():
        (folder / name).write_text(text)
    from hostile_files import hostile_checkpoint

    for case in ("stride0-scale60", "sparse", "pickle-os-system", "declared-1e12-elements"):
        (folder / f"{case}.pt").write_bytes(hostile_checkpoint(case))
    return {p.name: p for p in folder.iterdir()}


MAZE_CASES = {
    "deep.json": "nested 30,000 levels deep",
    "digits.json": "integer of 5,000 digits",
    "negative.json": "'size' must be an integer from 1 to 25, got -13$",
    "newline-key.json": r"unknown keys: 'x\\nTraceback",
    "many-keys.json": "and 4995 more",
    "cheese-on-wall.json": "cheese cannot be placed on a wall",
    "not-json.json": "not valid JSON",
}


@pytest.mark.parametrize("name", sorted(MAZE_CASES))
def test_bad_maze_file_is_one_line_exit_2(
    name: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(["vfield", "--maze", str(files[name])], capsys)
    assert code == 2 and out == ""
    assert err.startswith("mazewb vfield: error: ") and err.count("\n") == 1, err
    assert re.search(MAZE_CASES[name], err), err
    assert len(err) < MAX_MESSAGE_CHARS + 80


CHECKPOINT_CASES = {
    "random.pt": r"not a PyTorch checkpoint \(not a zip archive\)",
    "stride0-scale60.pt": "a scale-60 network; mazewb loads scales 1 to 8",
    "sparse.pt": "refused: the file contains a sparse tensor",
    "pickle-os-system.pt": "could run code",
    "declared-1e12-elements.pt": r"has shape \(1000000000000,\)",
    "missing.pt": "does not exist",
}


@pytest.mark.parametrize("name", sorted(CHECKPOINT_CASES))
def test_bad_checkpoint_is_one_line_exit_2(
    name: str, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = files.get(name, tmp_path / name)
    code, out, err = run_main(["outcomes", "--checkpoint", str(path)], capsys)
    assert code == 2 and out == ""
    assert err.startswith("mazewb outcomes: error: ") and err.count("\n") == 1, err
    assert re.search(CHECKPOINT_CASES[name], err), err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["eval", "--seeds", "5:x"], "seeds must look like A:B or N"),
        (["eval", "--seeds", "9:3"], "must be a non-empty range"),
        (["eval", "--seeds", "0:99999999999"], "must be a non-empty range"),
        (["eval", "--seeds", "-5:3"], "argument --seeds: expected one argument (see mazewb eval --help)"),
        (["vfield", "--seed", "-5"], "a level seed must be an integer from 0"),
        (["vfield", "--seed", "x\ny"], r"invalid int value: 'x\ny'"),
        (["vfield", "--maze", "{cheese-on-wall.json}", "--seed", "3"], "not allowed with argument --maze"),
        (["vfield", "--layer", "nope", "--cheese-vector", "1"], "unknown hook points ['nope']"),
        (["vfield", "--interventions", "{interventions-unknown.json}"], "unknown intervention kind 'add'"),
        (["vfield", "--interventions", "{interventions-deep.json}"], "nested 1,000 levels deep"),
        (["vfield", "--interventions", "/nonexistent/iv.json"], "cannot read interventions file"),
        (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
        (["train", "fast", "--name", "none", "--resume", "--runs-dir", "{tmp}"], "nothing to resume"),
        (["train", "fast", "--name", "d", "--device", "tpu:7", "--runs-dir", "{tmp}"], "unknown device 'tpu:7'"),
        (["bench-train", "--device", "foo"], "unknown device 'foo'"),
        (["bench-train", "--batches", "0"], "--batches: must be at least 1"),
        (["bench-edit-reuse", "--edits", "-1"], "--edits: must be at least 1"),
        (["eval", "--common-region", "-3"], "--common-region: must be 0 or more"),
        (["eval-regions", "--common-region", "0"], "--common-region: must be at least 1"),
    ],
)
def test_bad_options_are_one_line_exit_2(
    argv: list[str], needle: str, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # "{name}" stands for the fixture file of that name, "{tmp}" for an empty folder.
    argv = [str(tmp_path) if a == "{tmp}" else str(files[a[1:-1]]) if a.startswith("{") else a for a in argv]
    code, out, err = run_main(argv, capsys)
    assert code == 2 and out == ""
    assert re.match(ONE_LINE, err), err
    assert needle in err, err


def test_a_bug_is_not_a_user_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A plain ValueError (or any other exception) from inside the library is a bug: it propagates.
    def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("internal invariant broken")

    monkeypatch.setattr("mazewb.analysis.vector_fields", broken)
    maze = tmp_path / "tiny.json"
    maze.write_text(Maze.from_strings(["C.", "M."]).to_json())
    with pytest.raises(ValueError, match="internal invariant"):
        cli.main(["vfield", "--maze", str(maze)])
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------ real processes
_SPAM = textwrap.dedent(
    """
    import sys
    import mazewb.cli as cli
    def configure(parser):
        pass
    def spam(args):
        for i in range(200_000):
            print("line", i)
        return 0
    def bug(args):
        return {}["missing"]
    cli.COMMANDS["spam"] = ("print many lines", configure, spam)
    cli.COMMANDS["bug"] = ("a command with a bug", configure, bug)
    sys.exit(cli.main(sys.argv[1:]))
    """
)


def test_a_bug_exits_1_with_its_traceback() -> None:
    done = subprocess.run([sys.executable, "-c", _SPAM, "bug"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr and "KeyError: 'missing'" in done.stderr


def test_a_closed_pipe_ends_quietly() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SPAM, "spam"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"line 0\n"  # like `| head -1`
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0
    assert err == b"", err


def test_usage_errors_escape_what_the_user_typed() -> None:
    err = io.StringIO()
    parser = cli.build_parser()
    with pytest.raises(SystemExit) as info, contextlib.redirect_stderr(err):
        parser.parse_args(["vfield", "--seed", "1\nTraceback (most recent call last):"])
    assert info.value.code == 2 and err.getvalue().count("\n") == 1


def test_the_parser_starts_without_torch() -> None:
    # `mazewb --help` and every subcommand's options come from argparse and plain dataclasses;
    # torch (~2 CPU s to import here) loads only when a command runs.
    script = textwrap.dedent(
        """
        import contextlib, io, sys
        import mazewb.cli as cli
        for argv in (["--help"], ["train", "fast", "--help"], ["eval", "--help"], ["stats", "--help"]):
            with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):
                cli.main(argv)
        print(sorted(m for m in ("torch", "pandas", "dash", "plotly") if m in sys.modules))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


@pytest.mark.parametrize("module", ["mazewb", "mazewb.cli"])
def test_python_dash_m_knows_every_command(module: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module, "eval", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "--cheese-region" in done.stdout
