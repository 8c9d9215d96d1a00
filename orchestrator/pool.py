"""Ray actors: the workers (one per GPU, spread over the cluster's nodes) and the router, which
follows the run's plan (`plan.Dispatcher`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ray

from t2a_ray.metering.gpu import gpus_are_logical
from t2a_ray.orchestrator.plan import Dispatcher
from t2a_ray.orchestrator.run_plan import RunPlan
from t2a_ray.orchestrator.worker import Worker

# A worker whose process died is restarted by Ray (its models are gone); the trial is retried a
# bounded number of times by the caller, so an endless crash loop cannot happen.
RESTARTS_UNBOUNDED = -1
# Ray gives the head node this resource; asking for a sliver of it pins an actor or task there.
HEAD_NODE_RESOURCE = "node:__internal_head__"


@dataclass
class Pool:
    workers: list[Any]  # actor handles
    router: Any

    @classmethod
    def start(
        cls, run_root: str, n_workers: int, use_gpus: bool, run_plan: RunPlan, lock_scope: str = ""
    ) -> Pool:
        resources = {"num_gpus": 1, "num_cpus": 0} if use_gpus else {"num_gpus": 0, "num_cpus": 1}
        # Set in the process, not in a runtime env: a worker with one of its own cannot start from the
        # processes Ray has ready (each would cost a new one).
        see_gpus = use_gpus and not gpus_are_logical()
        # Trials run one at a time (the default group); heartbeats answer beside them ("control").
        worker_cls = ray.remote(concurrency_groups={"control": 1})(Worker)
        workers = [
            worker_cls.options(
                **resources,
                max_restarts=RESTARTS_UNBOUNDED,
                max_task_retries=0,  # a trial in flight when the process dies is retried by the trial, not Ray
                scheduling_strategy="SPREAD",
                name=None,
            ).remote(run_root, i, lock_scope=lock_scope, see_gpus=see_gpus)
            for i in range(n_workers)
        ]
        # The router is state every trial needs: keep it on the head node, which outlives the others.
        router = (
            ray.remote(Dispatcher)
            .options(num_cpus=0, resources={HEAD_NODE_RESOURCE: 0.001})
            .remote(run_plan.pending, run_plan.plan, run_plan.cost, run_plan.placement)
        )
        return cls(workers, router)

    def call_all(
        self, method: str, *args, timeout_s: float | None = None, group: str | None = None
    ) -> list[Any]:
        """Call `method` on every worker (in concurrency group `group`, default: the trials'); a dead
        worker gives its exception instead of a result."""
        calls = [getattr(w, method) for w in self.workers]
        if group is not None:
            calls = [c.options(concurrency_group=group) for c in calls]
        return gather([c.remote(*args) for c in calls], timeout_s)


def gather(refs: list[Any], timeout_s: float | None = None) -> list[Any]:
    """The results of `refs`, an exception in place of each that failed."""
    out = []
    for ref in refs:
        try:
            out.append(ray.get(ref, timeout=timeout_s))
        except Exception as e:  # noqa: BLE001 — reported per caller
            out.append(e)
    return out
