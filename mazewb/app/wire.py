"""The body of a Dash callback request, as the browser sends it (for the load test and tests that
post crafted requests to ``/_dash-update-component``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def update_body(
    output: str,
    inputs: Sequence[Mapping[str, Any]],
    state: Sequence[Mapping[str, Any]],
    trigger: str,
    values: Mapping[str, Any],
    states: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One callback's request: ``output`` is Dash's output key (``"..a.b...c.d.."`` for several),
    ``inputs`` / ``state`` its dependency lists; values by ``"id.prop"`` (``states`` for the
    states, default ``values``; others None); ``trigger`` the changed ``"id.prop"``."""
    states = values if states is None else states
    if output.startswith(".."):
        outputs: Any = [
            dict(zip(("id", "property"), o.split(".", 1), strict=True)) for o in output.strip(".").split("...")
        ]
    else:
        outputs = dict(zip(("id", "property"), output.split(".", 1), strict=True))
    return {
        "output": output,
        "outputs": outputs,
        "inputs": [{**i, "value": values.get(f"{i['id']}.{i['property']}")} for i in inputs],
        "state": [{**s, "value": states.get(f"{s['id']}.{s['property']}")} for s in state],
        "changedPropIds": [trigger],
    }
