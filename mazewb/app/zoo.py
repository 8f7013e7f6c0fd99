"""The agent zoo a workbench server offers: the default agent and every ``*.pt`` of one folder.

A zoo agent is named by its file's stem (``checkpoints/zoo/region1.pt`` -> ``region1``) and its
checkpoint id (what the URL carries) is ``zoo:NAME``; the server's default agent is always the
first entry, id ``default``. A browser only ever names an agent: the name is looked up in the
server's own listing of its folder (names of letters, digits, ``_ . -``; at most
``MAX_AGENTS`` files), never read as a path. The folder is ``checkpoints/zoo`` beside the
bundled agent unless the server was started with another (``mazewb serve --zoo DIR``).

What the Model panel lists for each agent (training region, in-distribution P(cheese), samples)
comes from its model card, read once per file version (cached by modification time and size).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mazewb.errors import CheckpointError, ConfigError, user_message

MAX_AGENTS = 32
PREFIX = "zoo:"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ZooEntry:
    """One agent of the zoo as the Model panel lists it (card values None when not stated)."""

    name: str
    checkpoint: str  # 'default' or 'zoo:NAME'
    region: int | None = None
    p_cheese: float | None = None  # exact in-distribution P(cheese) from the card's evaluation
    samples: int | None = None
    untrained: bool = False
    error: str = ""  # why the card could not be read (the agent is listed, not loadable)

    @property
    def label(self) -> str:
        region = f"region {self.region}" if self.region is not None else "region ?"
        return f"{self.name} ({region})"


def _card_values(card: dict[str, Any]) -> dict[str, Any]:
    region = card.get("cheese_region")
    if isinstance(region, bool) or not isinstance(region, int) or not 0 <= region <= 64:
        region = None
    p_cheese = None
    ev = card.get("eval")
    if isinstance(ev, dict) and isinstance(ev.get("in_distribution"), dict):
        value = ev["in_distribution"].get("p_cheese")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1:
            p_cheese = float(value)
    samples = card.get("samples")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        samples = None
    untrained = card.get("trained") is False or bool(card.get("placeholder"))
    return {"region": region, "p_cheese": p_cheese, "samples": samples, "untrained": untrained}


class Zoo:
    """The agents a server offers (see the module docstring). ``folder``: None for the bundled
    ``checkpoints/zoo``; ``default_path``: the server's default agent (None: the bundled one)."""

    def __init__(self, folder: str | Path | None = None, default_path: str | Path | None = None) -> None:
        self._folder = Path(folder).expanduser() if folder is not None else None
        if self._folder is not None and not self._folder.is_dir():
            raise ConfigError(f"the zoo folder {str(folder)[:200]!r} is not a folder")
        self.default_path = Path(default_path) if default_path else None
        self._lock = threading.Lock()
        self._cards: dict[Path, tuple[tuple, dict[str, Any]]] = {}

    @property
    def folder(self) -> Path:
        from mazewb.policy.checkpoint import default_checkpoint_path

        return self._folder if self._folder is not None else default_checkpoint_path().parent / "zoo"

    def _default_file(self) -> Path:
        from mazewb.policy.checkpoint import default_checkpoint_path

        return self.default_path or default_checkpoint_path()

    def paths(self) -> dict[str, Path]:
        """The folder's agents by name (sorted; odd names, non-files and the default skipped)."""
        from mazewb.train.evaluate import zoo_checkpoints

        try:
            files = zoo_checkpoints(self.folder)[1:]
        except OSError:
            return {}
        try:
            default = self._default_file().resolve()
        except OSError:
            default = None
        out: dict[str, Path] = {}
        for path in files:
            if len(out) >= MAX_AGENTS:
                break
            try:
                if not NAME.match(path.stem) or not path.is_file() or path.resolve() == default:
                    continue
            except OSError:
                continue
            out[path.stem] = path
        return out

    def path(self, name: str) -> Path:
        """The file of the zoo agent ``name`` (CheckpointError when the server lists none)."""
        if not isinstance(name, str) or not NAME.match(name):
            raise CheckpointError("a zoo agent is named by letters, digits, '_', '.' and '-' only")
        path = self.paths().get(name)
        if path is None:
            raise CheckpointError(f"this server's zoo has no agent named {name!r}")
        return path

    def checkpoints(self) -> list[str]:
        """Every agent's checkpoint id, the default first."""
        return ["default", *(PREFIX + name for name in self.paths())]

    def entries(self) -> list[ZooEntry]:
        """Every agent with what its card says, the default first."""
        items = [("default", "default", self._default_file())]
        items += [(name, PREFIX + name, path) for name, path in self.paths().items()]
        return [self._entry(*item) for item in items]

    def _entry(self, name: str, checkpoint: str, path: Path) -> ZooEntry:
        try:
            card = self._card(path)
        except Exception as exc:  # noqa: BLE001 - listed with the reason, never loaded
            return ZooEntry(name, checkpoint, error=user_message(exc))
        return ZooEntry(name, checkpoint, **_card_values(card))

    def _card(self, path: Path) -> dict[str, Any]:
        from mazewb.policy import load_policy
        from mazewb.policy.checkpoint import MAX_UPLOAD_BYTES

        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        with self._lock:
            hit = self._cards.get(path)
            if hit is not None and hit[0] == stamp:
                return hit[1]
        if st.st_size > MAX_UPLOAD_BYTES:
            raise CheckpointError(f"{path.name}: {st.st_size:,} bytes, over the limit of {MAX_UPLOAD_BYTES:,}")
        card = dict(load_policy(path, device="cpu").card)
        with self._lock:
            self._cards[path] = (stamp, card)
        return card


def checkpoint_name(checkpoint: str) -> str:
    """How a checkpoint id is named in the app's lists ('default', a zoo name, or the id)."""
    return checkpoint[len(PREFIX) :] if checkpoint.startswith(PREFIX) else checkpoint
