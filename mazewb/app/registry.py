"""The policies a workbench server has loaded, by checkpoint id (what the URL carries).

Checkpoint ids: ``default`` (the agent the server was started with), ``path:/some/file.pt``
(a file on the server), ``upload:<first 16 hex digits of its SHA-256>`` (a file a browser
uploaded; kept in memory while there is room). Loading goes through
``mazewb.policy.load_policy`` / ``load_policy_bytes``, which never unpickle arbitrary objects.

Loading by path can be switched off (``allow_paths=False``): the server does so when it listens
beyond this machine, so that a browser cannot make it read files by name unless the operator
allowed it (``mazewb serve --allow-path-loading``). Uploads stay possible.

Results are cached by the checkpoint's content hash (``LoadedPolicy.key``), so two ids for the
same file share their cache entries, and a retrained default agent gets fresh ones.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mazewb.policy import CheckpointError, ImpalaPolicy, load_policy, load_policy_bytes
from mazewb.policy.checkpoint import MAX_UPLOAD_BYTES, default_checkpoint_path

PATHS_OFF = (
    "Loading a checkpoint by its path on the server is switched off: this server can be reached from "
    "other machines. Upload the file instead (Model tab), or ask the operator to restart it with "
    "'mazewb serve --allow-path-loading'."
)


@dataclass(frozen=True)
class LoadedPolicy:
    id: str
    policy: ImpalaPolicy
    key: str  # sha256 of the file's bytes
    label: str
    markdown: str = ""  # a Markdown model card beside the file (same name, .md), if any

    @property
    def card(self) -> dict[str, Any]:
        return dict(self.policy.card)

    @property
    def untrained(self) -> bool:
        """True when the model card says the weights are random (a placeholder)."""
        card = self.policy.card
        return card.get("trained") is False or bool(card.get("placeholder"))

    @property
    def region(self) -> int | None:
        """The cheese region the model card says the agent was trained with (the top-right
        ``region x region`` squares), or None when the card does not say."""
        value = self.policy.card.get("cheese_region")
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 64:
            return None
        return value

    @property
    def device(self) -> str:
        dev = self.policy.device
        if dev.type == "cuda":
            import torch

            return f"CUDA ({torch.cuda.get_device_name(dev)})"
        return "CPU"


def _markdown_card(path: Path, limit: int = 200_000) -> str:
    """The Markdown model card written beside a checkpoint (``x.pt`` -> ``x.md``), or ''."""
    card = path.with_suffix(".md")
    try:
        if card.is_file() and card.stat().st_size <= limit:
            return card.read_text(encoding="utf-8", errors="replace")
    except OSError:
        pass
    return ""


def _fast_layout(policy: ImpalaPolicy) -> ImpalaPolicy:
    """Store the convolution weights channels-last: on CPUs the exact fp32 forward pass runs
    about twice as fast, with the same results up to float rounding (~1e-7 in probabilities)."""
    import torch

    return policy.to(memory_format=torch.channels_last)


class PolicyRegistry:
    """Thread-safe map from checkpoint ids to loaded policies, bounded for uploads/paths."""

    def __init__(
        self,
        default_path: str | Path | None = None,
        keep: int = 6,
        max_bytes: int = MAX_UPLOAD_BYTES,
        allow_paths: bool = True,
        zoo: Any = None,
    ):
        self.default_path = Path(default_path) if default_path else None
        self.keep = keep
        self.max_bytes = max_bytes
        self.allow_paths = allow_paths
        from mazewb.app.zoo import Zoo

        self.zoo = zoo if zoo is not None else Zoo(None, self.default_path)  # 'zoo:NAME' ids
        self._lock = threading.Lock()
        self._loaded: OrderedDict[str, tuple[LoadedPolicy, tuple | None]] = OrderedDict()

    def _default_file(self) -> Path:
        return self.default_path or default_checkpoint_path()

    @staticmethod
    def _stamp(path: Path) -> tuple | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def get(self, checkpoint: str) -> LoadedPolicy:
        """The policy for a checkpoint id, loading it if needed (raises CheckpointError)."""
        if not isinstance(checkpoint, str) or not checkpoint:
            raise CheckpointError("no checkpoint given")
        if checkpoint == "default":
            path = self._default_file()
        elif checkpoint.startswith("path:"):
            if not self.allow_paths:
                raise CheckpointError(PATHS_OFF)
            path = Path(checkpoint[5:]).expanduser()
        elif checkpoint.startswith("zoo:"):
            path = self.zoo.path(checkpoint[4:])  # a name in the server's own listing, never a path
        elif checkpoint.startswith("upload:"):
            with self._lock:
                entry = self._loaded.get(checkpoint)
                if entry is not None:
                    self._loaded.move_to_end(checkpoint)
                    return entry[0]
            raise CheckpointError(
                "this link refers to an uploaded checkpoint that this server no longer holds "
                "(uploads are kept in memory only); upload the file again on the Model tab"
            )
        else:
            raise CheckpointError(
                f"unknown checkpoint {checkpoint!r}: expected 'default', 'zoo:NAME', 'path:FILE' or 'upload:HASH'"
            )
        stamp = self._stamp(path)
        with self._lock:
            entry = self._loaded.get(checkpoint)
            if entry is not None and entry[1] == stamp:
                self._loaded.move_to_end(checkpoint)
                return entry[0]
        if stamp is not None and stamp[1] > self.max_bytes:
            raise CheckpointError(f"{path}: {stamp[1]:,} bytes, over the limit of {self.max_bytes:,}")
        policy = _fast_layout(load_policy(path))
        label = "bundled agent" if checkpoint == "default" else str(path)
        label = f"zoo agent {checkpoint[4:]}" if checkpoint.startswith("zoo:") else label
        loaded = LoadedPolicy(
            checkpoint, policy, policy.card.get("sha256", ""), f"{label} ({path.name})", _markdown_card(path)
        )
        self._remember(checkpoint, loaded, stamp)
        return loaded

    def add_upload(self, data: bytes, name: str) -> LoadedPolicy:
        """Load uploaded bytes (size-limited, validated); returns the policy with its new id."""
        policy = _fast_layout(load_policy_bytes(data, name, max_bytes=self.max_bytes))
        key = policy.card["sha256"]
        checkpoint = f"upload:{key[:16]}"
        loaded = LoadedPolicy(checkpoint, policy, key, f"uploaded {name}")
        self._remember(checkpoint, loaded, None)
        return loaded

    def _remember(self, checkpoint: str, loaded: LoadedPolicy, stamp: tuple | None) -> None:
        with self._lock:
            self._loaded[checkpoint] = (loaded, stamp)
            self._loaded.move_to_end(checkpoint)
            while len(self._loaded) > self.keep:
                oldest = next(iter(self._loaded))
                if oldest == "default":
                    self._loaded.move_to_end(oldest)
                    if len(self._loaded) <= 1:
                        break
                    oldest = next(iter(self._loaded))
                self._loaded.pop(oldest)
