"""Fréchet distance against closed forms, FAD and FAD∞ on Gaussians with known answers."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from t2a_ray.analysis.quality import fad, fad_inf, frechet_distance, gaussian_stats


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
    assert fad(x, y) == pytest.approx(expected, rel=0.02)


def test_fad_inf_removes_the_small_sample_bias():
    # Same distribution on both sides: FAD(N) > 0 from sampling alone, shrinking like 1/N; FAD∞ ≈ 0.
    rng = np.random.default_rng(2)
    d = 8
    reference = rng.normal(size=(20_000, d))
    generated = rng.normal(size=(20_000, d))
    res = fad_inf(generated, reference, ns=[100, 200, 400, 800, 1600], seed=0)
    assert res.fads[0] > 5 * abs(res.score)
    assert abs(res.score) < 0.03
    assert res.slope > 0 and res.r2 > 0.9
    assert res.ns == (100, 200, 400, 800, 1600)
    again = fad_inf(generated, reference, ns=[100, 200, 400, 800, 1600], seed=0)
    assert again == res  # seeded: reproducible


def test_fad_inf_default_sizes_and_too_few():
    rng = np.random.default_rng(5)
    ref, gen = rng.normal(size=(300, 4)), rng.normal(size=(300, 4))
    res = fad_inf(gen, ref)
    assert res.ns[0] == 150 and res.ns[-1] == 300 and len(res.ns) == 25
    with pytest.raises(ValueError, match="at least two subset sizes"):
        fad_inf(gen[:2], ref)
