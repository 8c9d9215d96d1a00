"""Pareto fronts: property tests (hypothesis) of dominance, order invariance and duplicates; hypervolume
and knee on known cases."""

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from t2a_ray.analysis.fronts import (
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


def _arrays(points):
    e, q, ce, cq = (np.array(v, dtype=float) for v in zip(*points, strict=True))
    return e, q, ce, cq


def _beats(i, j, e, q, ce, cq, sense):
    """Definition, one pair at a time: i's pessimistic end beats j's optimistic end in both."""
    c = -q if sense == "max" else q
    e_i, e_j = e[i] + ce[i], e[j] - ce[j]
    c_i, c_j = c[i] + cq[i], c[j] - cq[j]
    return e_i <= e_j and c_i <= c_j and (e_i < e_j or c_i < c_j)


@settings(max_examples=150, deadline=None)
@given(_points, st.sampled_from(["max", "min"]), st.booleans())
def test_front_is_exactly_the_undominated_points(points, sense, use_ci):
    e, q, ce, cq = _arrays(points)
    if not use_ci:
        ce = cq = np.zeros_like(e)
    on = pareto_mask(e, q, sense, ce, cq)
    n = len(e)
    for j in range(n):
        dominated = any(_beats(i, j, e, q, ce, cq, sense) for i in range(n) if i != j)
        assert on[j] == (not dominated)  # no front point dominated; every dominated point off the front
    # Every point off the front is dominated by a point *on* it (dominance is transitive).
    for j in np.flatnonzero(~on):
        assert any(_beats(i, j, e, q, ce, cq, sense) for i in np.flatnonzero(on))
    assert on.any()


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


@settings(max_examples=100, deadline=None)
@given(_points, st.sampled_from(["max", "min"]))
def test_ci_front_contains_plain_front_and_zero_ci_is_plain(points, sense):
    e, q, ce, cq = _arrays(points)
    plain = pareto_mask(e, q, sense)
    np.testing.assert_array_equal(plain, pareto_mask(e, q, sense, np.zeros_like(e), np.zeros_like(q)))
    assert np.all(pareto_mask(e, q, sense, ce, cq)[plain])


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
