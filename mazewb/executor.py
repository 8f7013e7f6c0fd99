"""Where batch work runs: in this process (``LocalExecutor``, the default) or on Ray (``RayExecutor``).

The unit of work is a chunk of items (maze seeds, or mazes) and its result a table:
``work(policy, chunk, **kwargs) -> pd.DataFrame`` is a plain module-level function of the science
code (``mazewb.analysis.stats.behaviour_batch``, ...). An executor runs it over every chunk and
returns the tables in chunk order, one per chunk, whatever order they finished in and however
often a chunk was retried, so no maze is lost or counted twice. The science never knows where it
ran: for the same chunks the tables are the same.

On Ray the policy is put in the object store once per ``map`` (its state dict and card, as
mazewb checkpoint bytes) and rebuilt once per worker process through the same safe loader as
any checkpoint (``load_policy_bytes``: checked before allocating, no pickled code runs); each
task asks for one GPU when the cluster has GPUs, else one CPU. A chunk whose worker dies is
retried (``max_retries``); Ctrl-C cancels the remote tasks still pending. Ray is optional: ``pip install -e ".[ray]"``.
"""

from __future__ import annotations

import io
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tqdm.auto import tqdm

from mazewb.errors import MazewbError

if TYPE_CHECKING:  # torch and pandas load on first use: the CLI's parser imports this module
    import pandas as pd

    from mazewb.policy import ImpalaPolicy

Work = Callable[..., "pd.DataFrame"]
"""``work(policy, chunk, **kwargs) -> table``: a module-level function (so workers import it)."""

RAY_INSTALL_HINT = 'Ray is not installed: pip install -e ".[ray]" (or pip install "ray==2.60.0")'


class ExecutorError(MazewbError):
    """An executor that cannot be used as asked (Ray missing, no cluster at the address, ...)."""


class Executor(Protocol):
    """Runs ``work`` over chunks; ``parallelism`` is how many chunks it runs at once."""

    parallelism: int

    def map(
        self,
        work: Work,
        policy: ImpalaPolicy,
        chunks: Sequence[Sequence[Any]],
        *,
        desc: str = "chunks",
        progress: bool = True,
        **kwargs: Any,
    ) -> list[pd.DataFrame]: ...


class LocalExecutor:
    """Every chunk in this process, one after another (today's behaviour; needs no Ray)."""

    parallelism = 1

    def map(
        self,
        work: Work,
        policy: ImpalaPolicy,
        chunks: Sequence[Sequence[Any]],
        *,
        desc: str = "chunks",
        progress: bool = True,
        **kwargs: Any,
    ) -> list[pd.DataFrame]:
        return [work(policy, chunk, **kwargs) for chunk in tqdm(chunks, desc=desc, unit="chunk", disable=not progress)]


def policy_payload(policy: ImpalaPolicy) -> tuple[bytes, dict[str, Any]]:
    """The policy as mazewb checkpoint bytes (CPU state dict, format tag) and its card."""
    import torch

    from mazewb.policy.checkpoint import FORMAT

    state_dict = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in policy.state_dict().items()}
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "state_dict": state_dict, "card": {}}, buffer)
    return buffer.getvalue(), dict(policy.card or {})


def policy_from_payload(payload: tuple[bytes, dict[str, Any]]) -> ImpalaPolicy:
    """Rebuild a policy from ``policy_payload`` with the safe checkpoint loader (no pickled code
    runs), on CUDA when this worker has a GPU, with the original card."""
    from mazewb.policy.checkpoint import load_policy_bytes

    data, card = payload
    policy = load_policy_bytes(data, str(card.get("file") or "policy"), max_bytes=len(data))
    policy.card = dict(card)
    return policy


_WORKER_POLICIES: OrderedDict[str, ImpalaPolicy] = OrderedDict()
_WORKER_POLICY_SLOTS = 4  # eval-regions ships one policy per agent; a worker keeps the last few


def _run_chunk(work: Work, payload_ref: list[Any], chunk: Sequence[Any], kwargs: dict[str, Any]) -> pd.DataFrame:
    """The Ray task: rebuild the policy once per worker (``payload_ref`` is wrapped in a list so
    Ray passes the reference, not the value), then run the chunk."""
    import ray

    ref = payload_ref[0]
    key = ref.hex()
    policy = _WORKER_POLICIES.get(key)
    if policy is None:
        policy = policy_from_payload(ray.get(ref))
        _WORKER_POLICIES[key] = policy
        while len(_WORKER_POLICIES) > _WORKER_POLICY_SLOTS:
            _WORKER_POLICIES.popitem(last=False)
    return work(policy, chunk, **kwargs)


def _import_ray():  # noqa: ANN202 - the ray module
    try:
        import ray
    except ImportError:
        raise ExecutorError(RAY_INSTALL_HINT) from None
    return ray


class RayExecutor:
    """Chunks as Ray tasks: a local Ray (``address=None``; ``num_cpus`` workers, default all
    cores) or a running cluster (``address``, e.g. ``"auto"`` or ``"10.0.0.1:6379"``)."""

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None, max_retries: int = 3) -> None:
        ray = _import_ray()
        self.ray = ray
        self.max_retries = max_retries
        if not ray.is_initialized():
            try:
                if address is None:
                    # Workers import the same mazewb as this process (a checkout, not only an install).
                    package_root = str(Path(__file__).resolve().parent.parent)
                    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)
                    ray.init(
                        num_cpus=num_cpus,
                        include_dashboard=False,
                        log_to_driver=False,
                        runtime_env={"env_vars": {"PYTHONPATH": path}},
                    )
                else:
                    ray.init(address=address, log_to_driver=False)
            except ConnectionError as exc:
                raise ExecutorError(f"cannot join the Ray cluster at {address!r}: {exc}") from None
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        self.parallelism = max(1, self.gpus or int(resources.get("CPU", 1)))
        self._remote = ray.remote(_run_chunk)

    def map(
        self,
        work: Work,
        policy: ImpalaPolicy,
        chunks: Sequence[Sequence[Any]],
        *,
        desc: str = "chunks",
        progress: bool = True,
        **kwargs: Any,
    ) -> list[pd.DataFrame]:
        ray = self.ray
        if not chunks:
            return []
        payload = ray.put(policy_payload(policy))
        resources = {"num_gpus": 1, "num_cpus": 1} if self.gpus else {"num_cpus": 1}
        task = self._remote.options(max_retries=self.max_retries, **resources)
        index = {task.remote(work, [payload], list(chunk), kwargs): i for i, chunk in enumerate(chunks)}
        results: dict[int, pd.DataFrame] = {}
        pending = list(index)
        try:
            with tqdm(total=len(chunks), desc=desc, unit="chunk", disable=not progress) as bar:
                while pending:
                    done, pending = ray.wait(pending, num_returns=1)
                    for ref in done:
                        results[index[ref]] = ray.get(ref)  # a chunk's one table, retried or not
                        bar.update(1)
        except BaseException:
            # Ctrl-C (or a chunk that failed for good): stop the work still queued or running.
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return [results[i] for i in range(len(chunks))]


def make_executor(ray: bool = False, address: str | None = None, num_cpus: int | None = None) -> Executor:
    """The executor the command-line flags ask for: ``--ray`` (a local Ray), ``--ray-address``
    (join a cluster), else local."""
    if address is not None:
        return RayExecutor(address)
    if ray:
        return RayExecutor(num_cpus=num_cpus)
    return LocalExecutor()


def chunked(items: Sequence[Any], size: int) -> list[list[Any]]:
    """``items`` in consecutive chunks of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ExecutorError(f"a chunk holds at least one item, got {size}")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def add_executor_args(parser: Any) -> None:
    """``--ray``, ``--ray-address ADDR`` and ``--ray-cpus N`` for a batch command."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--ray", action="store_true", help="run the chunks on a local Ray (pip install -e '.[ray]')")
    group.add_argument("--ray-address", default=None, metavar="ADDR", help="run on a running Ray cluster (or 'auto')")
    parser.add_argument(
        "--ray-cpus", type=int, default=None, metavar="N", help="workers of the local Ray (default: all cores)"
    )


def executor_from_args(args: Any) -> Executor:
    return make_executor(args.ray, args.ray_address, args.ray_cpus)
