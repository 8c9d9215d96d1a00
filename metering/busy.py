"""How busy the GPU was in a window: the share of its time in which at least one kernel ran.

NVML keeps a ring buffer of utilisation samples (``nvmlDeviceGetSamples``, GPU utilisation): each is
the percentage of the sample period before its timestamp during which one or more kernels executed
(every 1/6 s on data-centre GPUs). Read once after a window — nothing is sampled inside it — and
averaged over the window, weighted by how much of each sample's period lies inside, they say whether
the GPU waited on the host between kernels: a launch-bound loop leaves gaps that no kernel fills.
It is not SM occupancy: one small kernel counts as busy.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

from t2a_ray.errors import MeteringError
from t2a_ray.metering.clock import Clock
from t2a_ray.metering.gpu import GPU

MIN_COVERED = 0.5  # a window whose samples cover less of it than this gets no figure


def busy_fraction(samples: Sequence[tuple[float, float]], start_s: float, end_s: float) -> float | None:
    """Mean busy fraction (0–1) over [start_s, end_s] from (timestamp s, utilisation %) samples, each
    covering the period since the sample before it (the first one: the median period). None when the
    samples cover less than `MIN_COVERED` of the window."""
    points = sorted(samples)
    if len(points) < 2 or end_s <= start_s:
        return None
    period = statistics.median(b[0] - a[0] for a, b in zip(points, points[1:], strict=False))
    covered = weighted = 0.0
    previous = points[0][0] - period
    for t, percent in points:
        overlap = min(t, end_s) - max(previous, start_s)
        if overlap > 0:
            covered += overlap
            weighted += overlap * percent / 100.0
        previous = t
    return weighted / covered if covered >= MIN_COVERED * (end_s - start_s) else None


def window_busy_fraction(gpu: GPU | None, clock: Clock, start_s: float, end_s: float) -> float | None:
    """The busy fraction of a window given in `clock`'s time, read from `gpu` after the window; None
    without a GPU, where it keeps no utilisation samples, or where reading them fails."""
    if gpu is None or not gpu.supports_utilization():
        return None
    to_epoch = time.time() - clock.now_s()  # NVML stamps samples with the host's wall clock
    try:
        samples = gpu.utilization_samples(start_s + to_epoch - 1.0)
    except MeteringError:
        return None
    return busy_fraction(samples, start_s + to_epoch, end_s + to_epoch)
