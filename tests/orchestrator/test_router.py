"""The router: GPUs fed, models sent where they are resident."""

from __future__ import annotations

import pytest

from t2a_ray.orchestrator.router import NoWorkersLeft, Router, SweepStopped


def test_each_model_stays_on_the_worker_that_loaded_it_when_queues_are_even():
    r = Router(2)
    first_a, first_b = r.assign("A"), r.assign("B")
    assert first_a != first_b
    for _ in range(5):
        r.release(first_a)
        r.release(first_b)
        assert r.assign("A") == first_a
        assert r.assign("B") == first_b


def test_an_idle_worker_loads_the_model_rather_than_let_a_queue_grow():
    r = Router(2)
    w = r.assign("A")
    assert r.assign("A") == w  # one trial queued behind a resident model costs about one load: wait
    assert r.assign("A") == 1 - w  # two would cost more: the idle worker loads A too


def test_dead_workers_are_skipped_and_none_left_is_an_error():
    r = Router(2)
    r.dead(0)
    assert {r.assign("A") for _ in range(3)} == {1}
    r.dead(1)
    with pytest.raises(NoWorkersLeft):
        r.assign("A")


def test_a_restarted_worker_has_no_models():
    r = Router(1)
    r.assign("A")
    r.restarted(0)
    assert r.workers[0].models == set()


def test_a_stopped_router_assigns_no_more_trials():
    router = Router(2)
    assert router.assign("m") == 0 and not router.is_stopped()
    router.stop()
    assert router.is_stopped()
    with pytest.raises(SweepStopped):
        router.assign("m")
