"""SlidingWindowMixin: a WorkChain step that resumes when the first of its running children ends, not the last.

``ToContext`` makes a workchain wait for every awaited process before its next step: submitting in waves of
``max_concurrent`` then leaves slots idle while the slowest job of a wave runs. With this mixin a step returns
:meth:`SlidingWindowMixin.wait_for_any` over the processes still running; the workchain resumes as soon as one of
them terminates, the next step looks at which have terminated (``node.is_terminated``) and fills the free slots.

How: aiida-core resumes a waiting workchain when its list of awaitables is empty. Here the callback of each awaitable
resumes it as soon as one is resolved; the next step starts with a fresh list (aiida-core resets it), so the
callbacks of the processes still running, registered for the earlier wait, find their awaitable gone and are
ignored, and the next ``wait_for_any`` registers them again (a process that ended meanwhile calls back at once).
The awaitables of a wait are checkpointed as usual, so a daemon restart resumes waiting on the same processes.
"""

from __future__ import annotations

from aiida.engine import ToContext
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

    def _on_awaitable_finished(self, awaitable) -> None:
        """Resolve ``awaitable`` and resume the workchain, even when other awaited processes still run."""
        if awaitable not in self._awaitables:
            # Registered by an earlier wait whose step has run since: the step saw the process (or will, next time).
            return
        super()._on_awaitable_finished(awaitable)
        if self.state == ProcessState.WAITING and self._awaitables:
            self.resume()
