"""Flow outcomes that a client of the Prefect API can read back: bad input as one line.

A flow that meets bad input (a :class:`~pipeline.errors.WastewatchError`) ends in a ``Failed``
state whose message is ``BAD_INPUT`` followed by the one-line reason, the line ``wastewatch run``
prints. ``wastewatch submit`` reads it from the flow run's state and exits 2 with that line,
whatever machine ran the flow; any other failure keeps Prefect's own message and is internal.
Called directly (``wastewatch run``), the flow still raises the original exception: the state
carries it as its data.
"""

from __future__ import annotations

from typing import Any

from prefect.states import Failed, State

from pipeline.errors import WastewatchError

__all__ = ["BAD_INPUT", "bad_input", "bad_input_reason"]

#: the start of a bad-input failure's state message.
BAD_INPUT = "wastewatch bad input: "


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def bad_input(exc: WastewatchError) -> State[Any]:
    """The ``Failed`` state a flow returns for bad input: the one-line reason as its message,
    the exception as its data (a direct call of the flow raises it)."""
    return Failed(message=BAD_INPUT + _one_line(exc), data=exc)


def bad_input_reason(state: State[Any] | None) -> str | None:
    """The one-line reason of a bad-input failure; None for any other state."""
    if state is None or not state.is_failed() or not state.message:
        return None
    if not state.message.startswith(BAD_INPUT):
        return None
    return state.message.removeprefix(BAD_INPUT)
