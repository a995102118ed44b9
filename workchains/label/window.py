"""SlidingWindowMixin: a WorkChain step that resumes when the first of its running children ends, not the last.

``ToContext`` makes a workchain wait for every awaited process before its next step: submitting in waves of
``max_concurrent`` then leaves slots idle while the slowest job of a wave runs. With this mixin a step returns
:meth:`SlidingWindowMixin.wait_for_any` over the processes still running; the workchain resumes as soon as one of
them terminates, the next step looks at which have terminated (``node.is_terminated``) and fills the free slots.

How: aiida-core resumes a waiting workchain when its list of awaitables is empty, and registers one callback per
awaitable with the runner (which polls the process until it ends). Here a callback resumes the workchain as soon as
one awaitable is resolved. The next step starts with a fresh list (aiida-core resets it), and the next
``wait_for_any`` awaits the processes still running again: their callbacks from the earlier wait are still pending,
so no second callback is registered for them (one callback per process, at most ``max_concurrent`` polling loops),
and a pending callback resolves whichever awaitable of the current wait has its process. A callback that fires while
no wait holds its process (during a step) is dropped: the step looks at ``is_terminated`` itself, and a later wait
on that process calls back at once. The awaitables of a wait are checkpointed as usual; after a daemon restart every
one of them is registered again.
"""

from __future__ import annotations

import functools

from aiida.engine import ToContext
from aiida.engine.processes.workchains.awaitable import AwaitableTarget
from aiida.orm import ProcessNode
from plumpy.process_states import ProcessState

__all__ = ('SlidingWindowMixin',)

#: Context key under which the processes of the current wait are placed (``ctx.window.<pk>``); cleared each step.
WINDOW = 'window'


class SlidingWindowMixin:
    """Mixin for a ``WorkChain``: ``return self.wait_for_any(nodes)`` resumes when any one of ``nodes`` ends."""

    def wait_for_any(self, nodes: list[ProcessNode]) -> ToContext:
        """Return the ``ToContext`` that waits until the first of ``nodes`` terminates (all of them, if few)."""
        self.ctx.pop(WINDOW, None)
        return ToContext(**{f'{WINDOW}.{node.pk}': node for node in nodes})

    def _action_awaitables(self) -> None:
        """Register a callback for each awaited process that has none pending yet."""
        pending = self._window_pending()
        for awaitable in self._awaitables:
            if awaitable.target != AwaitableTarget.PROCESS:
                raise AssertionError(f"invalid awaitable target '{awaitable.target}'")
            if awaitable.pk in pending:
                continue
            pending.add(awaitable.pk)
            callback = functools.partial(self.call_soon, self._on_awaitable_finished, awaitable)
            self.runner.call_on_process_finish(awaitable.pk, callback)

    def _on_awaitable_finished(self, awaitable) -> None:
        """Resolve the awaitable of this process in the current wait and resume, even if others still run."""
        self._window_pending().discard(awaitable.pk)
        current = next((item for item in self._awaitables if item.pk == awaitable.pk), None)
        if current is None:
            return  # no wait holds this process now: the next step sees it terminated
        super()._on_awaitable_finished(current)
        if self.state == ProcessState.WAITING and self._awaitables:
            self.resume()

    def _window_pending(self) -> set[int]:
        """The pks with a callback registered with the runner (not checkpointed: a reload registers all again)."""
        if not hasattr(self, '_window_callbacks'):
            self._window_callbacks = set()
        return self._window_callbacks
