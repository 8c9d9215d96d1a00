"""Fréchet distance against closed forms, FAD and FAD∞ on Gaussians with known answers."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from t2a_ray.analysis.quality import (
    check_finite,
    clap_scores,
    fad,
    fad_inf,
    fad_inf_sizes,
    frechet_distance,
    gaussian_stats,
    peak_normalise,
    quantise_int16,
)


def test_diagonal_gaussians_match_closed_form():
    # For commuting (here diagonal) covariances, tr((AB)^½) = Σ √(a_i b_i), so
    # FD = ‖μ1 − μ2‖² + Σ (√a_i − √b_i)².
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_rotation_invariance_and_general_covariances():
    # Rotating both Gaussians by the same orthogonal Q keeps the distance: a non-diagonal case with the
    # diagonal closed form as the answer.
    rng = np.random.default_rng(3)
    q = ortho_group.rvs(5, random_state=4)
    a, b = rng.uniform(0.1, 3.0, 5), rng.uniform(0.1, 3.0, 5)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    expected = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    got = frechet_distance(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


def test_one_dimensional_and_identical():
    # 1-D: the 2-Wasserstein² distance of N(m1, s1²) and N(m2, s2²) is (m1 − m2)² + (s1 − s2)².
    assert frechet_distance([1.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(4.0 + 1.0)
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    assert frechet_distance([0.0, 0.0], cov, [0.0, 0.0], cov) == pytest.approx(0.0, abs=1e-12)


def test_singular_covariances_stay_real_and_nonnegative():
    # Fewer samples than dimensions: rank-deficient covariances, as with a handful of generations.
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4, 16)), rng.normal(size=(5, 16))
    d = frechet_distance(*gaussian_stats(x), *gaussian_stats(y))
    assert np.isfinite(d) and d > 0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape mismatch"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="n ≥ 2"):
        gaussian_stats(np.zeros((1, 4)))


def test_fad_from_samples_approaches_the_closed_form():
    rng = np.random.default_rng(1)
    a, b = np.array([1.0, 2.0, 0.5]), np.array([0.5, 2.0, 1.5])
    mu1, mu2 = np.zeros(3), np.array([0.5, 0.0, -0.5])
    x = rng.normal(size=(200_000, 3)) * np.sqrt(a) + mu1
    y = rng.normal(size=(200_000, 3)) * np.sqrt(b) + mu2
    expected = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert fad(x, gaussian_stats(y)) == pytest.approx(expected, rel=0.02)


def test_fad_inf_removes_the_1_over_n_part_of_the_bias_but_is_not_unbiased():
    # Same distribution on both sides, so the true distance is 0: FAD(N) > 0 from sampling alone, shrinking
    # like 1/N; FAD∞ is far smaller than FAD at the sizes it was fitted on, yet not 0 — the finite
    # reference set keeps its own bias.
    rng = np.random.default_rng(2)
    d = 8
    reference = gaussian_stats(rng.normal(size=(20_000, d)))
    generated = rng.normal(size=(20_000, d))
    ns = [100, 200, 400, 800, 1600]
    res = fad_inf(generated, reference, ns=ns, rng=np.random.default_rng(0))
    assert res.fads[0] > 5 * abs(res.score)
    assert 0 < res.score < 0.03
    assert res.slope > 0 and res.r2 > 0.9
    assert res.ns == tuple(ns) and res.note is None
    again = fad_inf(generated, reference, ns=ns, rng=np.random.default_rng(0))
    assert again == res  # seeded: reproducible


def test_fad_inf_default_sizes_are_fadtks_and_too_few_rows_give_null_with_a_note():
    rng = np.random.default_rng(5)
    ref = gaussian_stats(rng.normal(size=(300, 4)))
    res = fad_inf(rng.normal(size=(1200, 4)), ref)
    assert list(res.ns) == fad_inf_sizes(1200) == [int(n) for n in np.linspace(500, 1200, 25)]
    assert res.score is not None and len(res.fads) == 25
    # 300 rows: fadtk would fit sizes 500…300 on draws from 300 rows; below 2 × 500 rows: null with a note
    few = fad_inf(rng.normal(size=(300, 4)), ref)
    assert few.score is None and few.slope is None and few.r2 is None and few.ns == ()
    assert few.note == "FAD∞ needs ≥ 1000 embedding rows (2 × fadtk's smallest subset of 500); got 300"
    three = fad_inf(rng.normal(size=(3, 4)), ref)  # a two-point fit of 3 generations is never reported
    assert three.score is None
    with pytest.raises(ValueError, match="at least two different subset sizes"):
        fad_inf(rng.normal(size=(2, 4)), ref, ns=[2, 2])


def test_non_finite_embeddings_raise_one_error_naming_the_rows():
    x = np.ones((6, 3))
    x[1, 2], x[4, 0] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"embeddings: 2 row\(s\) hold NaN or inf \(rows 1, 4\)"):
        gaussian_stats(x)
    with pytest.raises(ValueError, match=r"FAD∞ generated embeddings: .*rows 1, 4"):
        fad_inf(x, gaussian_stats(np.eye(3)))
    with pytest.raises(ValueError, match=r"CLAP audio embeddings: .*rows 1, 4"):
        clap_scores(np.ones((6, 3)), x)
    assert check_finite(np.ones((2, 2)), "x").dtype == np.float64


def test_clap_score_is_the_plain_cosine():
    t = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    a = np.array([[2.0, 0.0], [0.0, -1.0], [1.0, 0.0]])
    np.testing.assert_allclose(clap_scores(t, a), [1.0, -1.0, np.sqrt(0.5)])  # no clipping, no ×100


def test_peak_normalisation_and_int16_round_trip():
    x = np.array([[0.5, -0.25, 0.1], [0.0, 0.0, 0.0], [-2.0, 1.0, 0.0]])
    y = peak_normalise(x)
    np.testing.assert_allclose(np.abs(y).max(axis=1), [10 ** (-1 / 20), 0.0, 10 ** (-1 / 20)], rtol=1e-6)
    np.testing.assert_allclose(y[0] / y[0, 0], x[0] / x[0, 0], rtol=1e-6)  # a gain, nothing else
    q = quantise_int16(np.array([0.99999, -0.5, 1e-5, 2.0]))
    # truncation toward zero, as LAION-CLAP's astype(int16): 0.99999·32767 = 32766.67 → 32766
    np.testing.assert_array_equal(q * 32767.0, np.float32([32766, -16383, 0, 32767]) * np.float32(1))
