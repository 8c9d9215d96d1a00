"""Pareto fronts: property tests (hypothesis) of the dominance rule (module docstring of `fronts`), the
band beside the front, order invariance and duplicates; hypervolume and knee on known cases."""

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t2a_ray.analysis.fronts import (
    IN_BOTH,
    IN_ENERGY,
    IN_QUALITY,
    classify,
    compute_fronts,
    default_reference_point,
    dominated_mask,
    hypervolume,
    knee_index,
    pareto_mask,
)

# Small integer grids make ties and exact duplicates common, where fronts usually go wrong.
_value = st.integers(0, 12).map(float)
_ci = st.sampled_from([0.0, 0.0, 0.5, 1.0, 3.0])
_points = st.lists(st.tuples(_value, _value, _ci, _ci), min_size=1, max_size=30)


# Four points each dominated by the next (see the test below): random draws almost never make a cycle.
_CYCLE = [(5.0, -2.0, 1.0, 0.0), (3.0, -5.0, 2.0, 0.0), (0.0, -6.0, 1.0, 0.0), (2.0, -4.0, 0.0, 2.0)]
_cycle_at = st.none() | st.tuples(st.integers(0, 8), st.integers(0, 16)).map(
    lambda at: [(e + at[0], q + at[1], ce, cq) for e, q, ce, cq in _CYCLE]
)


def _arrays(points):
    e, q, ce, cq = (np.array(v, dtype=float) for v in zip(*points, strict=True))
    return e, q, ce, cq


def _beyond(x, ci, i, j):
    """i below j beyond noise: their intervals are disjoint, i's lower."""
    return x[i] + ci[i] < x[j] - ci[j]


def _dominates(i, j, e, q, ce, cq, sense):
    """The module docstring's rule, one pair at a time: (by (a), by (b)) — (a) i cheaper beyond noise and
    j not better beyond noise, (b) i better beyond noise and j not cheaper beyond noise."""
    c = -q if sense == "max" else q
    by_a = _beyond(e, ce, i, j) and not _beyond(c, cq, j, i)
    by_b = _beyond(c, cq, i, j) and not _beyond(e, ce, j, i)
    return by_a, by_b


def _plain_front(e, q, sense):
    """Textbook Pareto front: no other point at least as good in both and better in one."""
    c = -q if sense == "max" else q
    n = len(e)
    return np.array(
        [
            not any(
                e[i] <= e[j] and c[i] <= c[j] and (e[i] < e[j] or c[i] < c[j]) for i in range(n) if i != j
            )
            for j in range(n)
        ]
    )


@settings(max_examples=100, deadline=None)
@given(_points, st.sampled_from([[]] + [_CYCLE]), st.sampled_from(["max", "min"]))
def test_costlier_beyond_noise_and_not_better_beyond_noise_is_never_on_the_front(points, cycle, sense):
    e, q, ce, cq = _arrays(points + cycle)
    on = pareto_mask(e, q, sense, ce, cq)
    for i, j in itertools.permutations(range(len(e)), 2):
        if _dominates(i, j, e, q, ce, cq, sense)[0]:
            assert not on[j]


@settings(max_examples=100, deadline=None)
@given(_points, st.sampled_from([[]] + [_CYCLE]), st.sampled_from(["max", "min"]))
def test_the_front_is_never_empty_where_finite_points_exist(points, cycle, sense):
    e, q, ce, cq = _arrays(points + cycle)
    assert pareto_mask(e, q, sense, ce, cq).any()


@settings(max_examples=100, deadline=None)
@given(_points, st.sampled_from(["max", "min"]))
def test_with_zero_cis_the_front_is_the_plain_pareto_front(points, sense):
    e, q, _, _ = _arrays(points)
    zero = np.zeros_like(e)
    plain = _plain_front(e, q, sense)
    np.testing.assert_array_equal(pareto_mask(e, q, sense), plain)
    np.testing.assert_array_equal(pareto_mask(e, q, sense, zero, zero), plain)


@settings(max_examples=100, deadline=None)
@given(_points, _cycle_at, st.sampled_from(["max", "min"]))
def test_front_is_exactly_the_points_dominated_only_from_their_own_cycle(points, cycle, sense):
    """The definition, checked against a brute-force transitive closure of the dominance graph."""
    e, q, ce, cq = _arrays(points + (cycle or []))
    if sense == "min":
        q = -q  # the cycle's quality is to maximise
    n = len(e)
    dom = np.array([[any(_dominates(i, j, e, q, ce, cq, sense)) for j in range(n)] for i in range(n)])
    reach = dom.copy()
    for k in range(n):  # Floyd–Warshall: reach[i, j] when a path of dominance leads from i to j
        reach |= reach[:, [k]] & reach[[k], :]
    classes = classify(e, q, sense, ce, cq)
    for j in range(n):
        by_a = any(_dominates(i, j, e, q, ce, cq, sense)[0] for i in range(n))
        outside = [i for i in range(n) if _dominates(i, j, e, q, ce, cq, sense)[1] and not reach[j, i]]
        assert classes.on_front[j] == (not by_a and not outside)
        assert classes.on_cycle[j] == (classes.on_front[j] and dom[:, j].any())


def test_dominance_can_cycle_and_the_front_keeps_a_point_of_the_cycle():
    # Each dominates the next: 0 → 1 and 1 → 2 by quality (b), 2 → 3 and 3 → 0 by energy (a).
    e, q, ce, cq = _arrays(_CYCLE)
    for i in range(4):
        assert any(_dominates(i, (i + 1) % 4, e, q, ce, cq, "max"))
    classes = classify(e, q, "max", ce, cq)
    # 3 and 0 are dominated by energy (a): never on the front. 1 and 2 are dominated only by quality (b),
    # from their own cycle.
    assert list(classes.on_front) == [False, True, True, False]
    assert list(classes.on_cycle) == [False, True, True, False]


def test_noisy_costlier_configurations_are_beside_the_front_not_on_it():
    # Energy (J) and CLAP, each ± its 95 % CI: the same quality within noise, energy apart beyond it.
    e, ce = np.array([1.36, 2.95, 6.17]), np.array([0.05, 0.10, 0.20])
    q, cq = np.array([0.290, 0.290, 0.290]), np.array([0.020, 0.020, 0.020])
    classes = classify(e, q, "max", ce, cq)
    assert list(classes.on_front) == [True, False, False]
    assert list(classes.indistinguishable_in) == [None, IN_QUALITY, IN_QUALITY]
    df = pd.DataFrame({"energy": e, "energy_ci": ce, "clap": q, "clap_ci": cq}, index=[10, 11, 12])
    (front,) = compute_fronts(
        df, "energy", [("clap", "max")], energy_ci_col="energy_ci", quality_ci_cols={"clap": "clap_ci"}
    )
    assert front.members == (10,) and front.dominance == "ci95"
    assert front.indistinguishable == ((11, IN_QUALITY), (12, IN_QUALITY))


def _beats(i, j, e, q, ce, cq, sense):
    """i beats j beyond noise in both: pessimistic ends at least as good as j's optimistic, one better."""
    c = -q if sense == "max" else q
    e_i, e_j, c_i, c_j = e[i] + ce[i], e[j] - ce[j], c[i] + cq[i], c[j] - cq[j]
    return e_i <= e_j and c_i <= c_j and (e_i < e_j or c_i < c_j)


@settings(max_examples=100, deadline=None)
@given(_points, st.sampled_from([[]] + [_CYCLE]), st.sampled_from(["max", "min"]))
def test_front_band_and_ruled_out_split_the_points_and_the_band_says_what_it_cannot_tell(
    points, cycle, sense
):
    e, q, ce, cq = _arrays(points + cycle)
    c = -q if sense == "max" else q
    classes = classify(e, q, sense, ce, cq)
    n = len(e)
    for j in range(n):
        beaten = any(_beats(i, j, e, q, ce, cq, sense) for i in range(n))
        label = classes.indistinguishable_in[j]
        on = classes.on_front[j]
        assert [on, label is not None, classes.ruled_out[j]].count(True) == 1
        assert (label is not None) == (not on and not beaten)
        if label is not None:
            doms = [(i, *_dominates(i, j, e, q, ce, cq, sense)) for i in range(n)]
            ties_q = any(a and not _beyond(c, cq, i, j) for i, a, _ in doms)
            ties_e = any(b and not _beyond(e, ce, i, j) for i, _, b in doms)
            expected = {(True, False): IN_QUALITY, (False, True): IN_ENERGY, (True, True): IN_BOTH}
            assert label == expected[(ties_q, ties_e)]
    np.testing.assert_array_equal(dominated_mask(e, q, sense, ce, cq), classes.ruled_out)
    # with zero CIs nothing is indistinguishable: off the plain front is ruled out
    zero = classify(e, q, sense)
    assert all(x is None for x in zero.indistinguishable_in)
    np.testing.assert_array_equal(zero.ruled_out, ~_plain_front(e, q, sense))


@settings(max_examples=100, deadline=None)
@given(_points, st.sampled_from(["max", "min"]), st.randoms(use_true_random=False))
def test_front_is_invariant_to_row_order(points, sense, rnd):
    e, q, ce, cq = _arrays(points)
    perm = list(range(len(e)))
    rnd.shuffle(perm)
    on = pareto_mask(e, q, sense, ce, cq)
    on_perm = pareto_mask(e[perm], q[perm], sense, ce[perm], cq[perm])
    np.testing.assert_array_equal(on_perm, on[perm])


@settings(max_examples=100, deadline=None)
@given(_points, st.sampled_from(["max", "min"]))
def test_duplicates_share_their_fate(points, sense):
    e, q, ce, cq = _arrays(points + points[:3])  # the first three rows twice
    on = pareto_mask(e, q, sense, ce, cq)
    n = len(points)
    for k in range(min(3, n)):
        assert on[k] == on[n + k]
    for a, b in itertools.combinations(range(len(e)), 2):
        if (e[a], q[a], ce[a], cq[a]) == (e[b], q[b], ce[b], cq[b]):
            assert on[a] == on[b]


def _hv_bruteforce(e, q, sense, ref):
    """Union of the boxes [e_i, ref_e] × [c_i, ref_c], cell by cell on the grid of all coordinates."""
    c = -q if sense == "max" else q
    r_e, r_c = ref[0], (-ref[1] if sense == "max" else ref[1])
    xs = np.unique(np.clip(np.append(e, r_e), None, r_e))
    ys = np.unique(np.clip(np.append(c, r_c), None, r_c))
    area = 0.0
    for x0, x1 in itertools.pairwise(xs):
        for y0, y1 in itertools.pairwise(ys):
            if np.any((e <= x0) & (c <= y0)):
                area += (x1 - x0) * (y1 - y0)
    return area


@settings(max_examples=100, deadline=None)
@given(_points, st.sampled_from(["max", "min"]), st.randoms(use_true_random=False))
def test_hypervolume_matches_brute_force_and_ignores_order(points, sense, rnd):
    e, q, _, _ = _arrays(points)
    hv, ref = hypervolume(e, q, sense)
    assert hv == pytest.approx(_hv_bruteforce(e, q, sense, ref), rel=1e-9, abs=1e-9)
    perm = list(range(len(e)))
    rnd.shuffle(perm)
    assert hypervolume(e[perm], q[perm], sense, ref)[0] == pytest.approx(hv)
    on = pareto_mask(e, q, sense)
    assert hypervolume(e[on], q[on], sense, ref)[0] == pytest.approx(hv)  # dominated points add nothing


def test_hypervolume_known_value_and_reference_point():
    e, q = np.array([1.0, 2.0, 4.0]), np.array([0.2, 0.5, 0.6])
    # Against (5, 0): 1·0.2 + ... as a staircase: widths 1, 2, 1 at heights 0.2, 0.5, 0.6.
    hv, ref = hypervolume(e, q, "max", reference=(5.0, 0.0))
    assert ref == (5.0, 0.0) and hv == pytest.approx(1 * 0.2 + 2 * 0.5 + 1 * 0.6)
    assert default_reference_point(e, q, "max") == pytest.approx((4.3, 0.16))
    assert default_reference_point(e, q, "min") == pytest.approx((4.3, 0.64))


def test_knee_of_a_convex_front():
    e = np.array([1.0, 2.0, 3.0, 10.0])
    q = np.array([0.0, 8.0, 9.0, 10.0])  # a sharp bend at e = 2
    assert knee_index(e, q, "max") == 1
    assert knee_index(np.array([5.0]), np.array([1.0]), "max") == 0


def test_ci_aware_keeps_points_inside_the_noise():
    e, q = np.array([10.0, 11.0, 30.0]), np.array([0.50, 0.49, 0.20])
    assert list(pareto_mask(e, q, "max")) == [True, False, False]
    ce, cq = np.array([1.0, 1.0, 1.0]), np.array([0.02, 0.02, 0.02])
    # 11 J ± 1 vs 10 J ± 1 overlap: the second cannot be told apart from the first; the third can.
    assert list(pareto_mask(e, q, "max", ce, cq)) == [True, True, False]
    assert list(dominated_mask(e, q, "max", ce, cq)) == [False, False, True]


def test_nan_points_are_off_every_front():
    e, q = np.array([1.0, np.nan, 3.0]), np.array([0.1, 0.9, np.nan])
    assert list(pareto_mask(e, q, "max")) == [True, False, False]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b"]), _value, _value, _ci), min_size=1, max_size=25),
    st.randoms(use_true_random=False),
)
def test_compute_fronts_on_tables_is_order_invariant(rows, rnd):
    df = pd.DataFrame(rows, columns=["dataset", "energy", "clap", "clap_ci95"])
    fronts = compute_fronts(
        df, "energy", [("clap", "max")], ["dataset"], quality_ci_cols={"clap": "clap_ci95"}
    )
    shuffled = df.sample(frac=1.0, random_state=rnd.randint(0, 10_000))
    again = compute_fronts(
        shuffled, "energy", [("clap", "max")], ["dataset"], quality_ci_cols={"clap": "clap_ci95"}
    )
    assert [f.label for f in fronts] == [f.label for f in again]
    for f, g in zip(fronts, again, strict=True):
        assert set(f.members) == set(g.members)
        assert f.knee == g.knee
        assert f.hypervolume == pytest.approx(g.hypervolume)
    for f in fronts:
        sub = df[df["dataset"] == dict(f.group)["dataset"]]
        expected = pareto_mask(sub["energy"], sub["clap"], "max", None, sub["clap_ci95"])
        assert set(f.members) == set(sub.index[expected])
        assert f.knee in f.members


def test_bad_sense_is_an_error():
    with pytest.raises(ValueError, match="'max' or 'min'"):
        pareto_mask([1.0], [1.0], "best")
