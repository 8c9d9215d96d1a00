"""Which worker runs the next trial: keep every GPU fed, and send a model where it is already loaded.

The score of a worker for a trial is its queue length, plus one if the model is not resident there
(a load costs about a trial). The lowest score wins; ties go to the worker that has the model. With
enough memory this loads each model at most once per GPU, and never leaves a GPU idle while trials
wait, because Tune keeps more trials in flight than there are workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class NoWorkersLeft(RuntimeError):
    """Every worker has died and none came back."""


class SweepStopped(RuntimeError):
    """The driver is stopping the sweep (Ctrl-C): no trial starts, none writes a `failed` row."""


@dataclass
class WorkerState:
    queued: int = 0
    models: set[str] = field(default_factory=set)
    alive: bool = True


class Router:
    def __init__(self, n_workers: int):
        self.workers = [WorkerState() for _ in range(n_workers)]
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True

    def is_stopped(self) -> bool:
        return self.stopped

    def assign(self, model_key: str) -> int:
        if self.stopped:
            raise SweepStopped("the sweep is stopping")
        alive = [(i, w) for i, w in enumerate(self.workers) if w.alive]
        if not alive:
            raise NoWorkersLeft("every worker process has died")
        i, w = min(
            alive,
            key=lambda iw: (
                iw[1].queued + (model_key not in iw[1].models),
                model_key not in iw[1].models,
                iw[0],
            ),
        )
        w.queued += 1
        w.models.add(model_key)
        return i

    def release(self, index: int) -> None:
        self.workers[index].queued = max(0, self.workers[index].queued - 1)

    def restarted(self, index: int) -> None:
        """The worker's process was replaced: it has no models any more."""
        self.workers[index].models.clear()

    def dead(self, index: int) -> None:
        self.workers[index].alive = False
        self.workers[index].models.clear()
