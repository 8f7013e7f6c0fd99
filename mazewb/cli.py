"""The ``mazewb`` command line. Subcommands parse arguments and call the library."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help_text: str):  # noqa: ANN201
    """Register a subcommand: ``configure(parser)`` adds arguments, the function runs it."""

    def wrap(configure: Callable[[argparse.ArgumentParser], None]):  # noqa: ANN202
        def bind(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
            COMMANDS[name] = (help_text, configure, run)
            return run

        return bind

    return wrap


def at_least(minimum: int) -> Callable[[str], int]:
    """argparse type: a whole number >= ``minimum`` (a one-line usage error otherwise)."""
    bound = "0 or more" if minimum == 0 else f"at least {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8050)
    p.add_argument("--checkpoint", default=None, help="policy checkpoint to load (default: the bundled agent)")
    p.add_argument("--debug", action="store_true", help="Dash debug mode (reloader, dev tools)")
    p.add_argument("--zoo", default=None, help="folder of zoo agents (*.pt) the app offers (default: checkpoints/zoo)")
    p.add_argument(
        "--allow-path-loading",
        action="store_true",
        help="let browsers load checkpoints by their path on this server even when --host is not "
        "a loopback address (off by default there: anyone who can reach the server could name any file)",
    )
    p.add_argument(
        "--lessons",
        action="append",
        default=[],
        metavar="DIR",
        help="also offer the lessons in DIR/*.md (repeatable; each is validated at start, see docs/lessons.md)",
    )


@command("serve", "start the web workbench")(_serve_args)
def _serve(args: argparse.Namespace) -> int:
    from mazewb.app.server import serve

    serve(
        host=args.host,
        port=args.port,
        checkpoint=args.checkpoint,
        debug=args.debug,
        allow_path_loading=args.allow_path_loading,
        lessons=args.lessons,
        zoo=args.zoo,
    )
    return 0


def _load_commands() -> None:
    """Subcommands live in ``mazewb.commands.*`` modules, each registering with ``@command``."""
    import importlib
    import pkgutil

    import mazewb.commands

    for info in pkgutil.iter_modules(mazewb.commands.__path__):
        importlib.import_module(f"mazewb.commands.{info.name}")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other user error (``mazewb CMD: error:
    ...``, the value escaped, a pointer to ``--help``), exit 2."""

    def error(self, message: str) -> NoReturn:
        from mazewb.errors import user_message

        self.exit(2, f"{self.prog}: error: {user_message(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    _load_commands()
    parser = _Parser(prog="mazewb", description="Look inside maze-solving RL agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, configure, _) in COMMANDS.items():
        configure(sub.add_parser(name, help=help_text, description=help_text))
    return parser


# File problems the user caused (a mistyped --checkpoint or --maze path): user errors like the
# family's, wherever a library call opened the file. Other OSErrors (disk full, ...) are not.
_USER_FILE_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand. A user error (``MazewbError``, or a file the user named that cannot be
    opened) prints one line ``mazewb CMD: error: ...`` and returns 2; anything else is a bug and
    propagates with its traceback (exit 1). A closed stdout (``mazewb vfield ... | head``) ends
    quietly."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from mazewb.errors import MazewbError, user_message

    try:
        code = COMMANDS[args.command][2](args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # The reader went away (| head): stop without a message. Point stdout at /dev/null so the
        # interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (MazewbError, *_USER_FILE_ERRORS) as error:
        if os.environ.get("MAZEWB_DEBUG"):
            raise
        print(f"mazewb {args.command}: error: {user_message(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # `python -m mazewb.cli`: run the imported module's main, whose registry the commands fill
    # (this file as __main__ is a second module with an empty one).
    from mazewb.cli import main as _main

    sys.exit(_main())
