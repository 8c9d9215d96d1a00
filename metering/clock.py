"""Time for the meter: one clock object reads the time, sleeps, and runs the periodic sampler.

Why an object and not `time.perf_counter` directly: the meter's correctness depends on *when* things
happen relative to the GPU's energy counter (which changes every ~100 ms). Putting "time passes" behind
one small class lets the tests hand in a `FakeClock` (see `fakes.py`) under which the sampler, the fake
counter and the window boundaries advance together, deterministically and without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Clock:
    """Real time: `perf_counter` seconds (monotonic, sub-microsecond) and a daemon sampler thread."""

    def now_s(self) -> float:
        return time.perf_counter()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def start_periodic(
        self, fn: Callable[[float], float], name: str = "t2a-ray-sampler"
    ) -> Callable[[], None]:
        """Call `fn(due_s)` on a daemon thread until the returned stop function is called; `fn` returns
        the time its next call is due (the meter samples densely outside windows, between the counter's
        ticks inside them).

        Deadlines are absolute (no drift); after a stall (the GIL held for long) it resumes at once
        instead of bursting to catch up, since a burst of samples carries no extra information.
        """
        stop = threading.Event()

        def loop() -> None:
            due = self.now_s()
            while not stop.is_set():
                due = fn(due)
                delay = due - self.now_s()
                if delay < 0:
                    due, delay = self.now_s(), 0.0
                stop.wait(delay)

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()

        def stop_and_join() -> None:
            stop.set()
            if thread is not threading.current_thread():
                thread.join()

        return stop_and_join
