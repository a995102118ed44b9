"""Force-uncertainty calibration: scale recovery, ENCE and miscalibration area on errors of known law."""

import numpy as np
import pytest

from les_model.calibration import (
    expected_normalised_calibration_error,
    fit_force_calibration,
    miscalibration_area,
    plot_force_calibration,
)


def _gaussian_errors(sigma: np.ndarray, scale: float, seed: int = 0) -> np.ndarray:
    """(N,3) error vectors whose components have variance (scale * sigma)^2 / 3, so E|e|^2 = (scale * sigma)^2."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(sigma.size, 3)) * (scale * sigma / np.sqrt(3.0))[:, None]


@pytest.fixture
def sigma():
    return np.exp(np.random.default_rng(1).uniform(np.log(0.01), np.log(1.0), size=20000))


def test_overconfident_committee_gets_its_scale_back(sigma):
    errors = _gaussian_errors(sigma, scale=4.0)
    result = fit_force_calibration(sigma, errors)
    assert result.scale == pytest.approx(4.0, rel=0.03)
    # Raw sigma is 4x too small: badly calibrated; scaled, it matches the error law (sampling noise only).
    assert result.ence_raw == pytest.approx(3.0, abs=0.1)  # |RMV - 4 RMV| / RMV
    assert result.ence_calibrated < 0.05
    assert result.miscalibration_area_raw > 0.3
    assert result.miscalibration_area_calibrated < 0.02
    assert result.force_error_rms_mev_per_ang == pytest.approx(1000 * np.sqrt(np.mean(np.sum(errors**2, axis=1))))


def test_ence_sees_a_sigma_that_does_not_rank_errors(sigma):
    # Errors independent of sigma: one global scale cannot fix the ranking, ENCE stays large.
    errors = _gaussian_errors(np.full_like(sigma, np.sqrt(np.mean(sigma**2))), scale=1.0)
    result = fit_force_calibration(sigma, errors)
    assert result.scale == pytest.approx(1.0, rel=0.03)
    assert result.ence_calibrated > 0.5


def test_perfect_prediction_measures_zero(sigma):
    norms = np.linalg.norm(_gaussian_errors(sigma, 1.0), axis=1)
    assert expected_normalised_calibration_error(norms, norms, n_bins=10) == pytest.approx(0.0, abs=1e-12)
    # Coverage with sigma = |e| itself: 3|e|^2/sigma^2 = 3 for every atom, inside exactly the levels with chi2 >= 3.
    from scipy.stats import chi2

    levels = np.linspace(0, 1, 101)[1:-1]
    expected = np.mean(np.abs((chi2.ppf(levels, 3) >= 3.0) - levels))
    assert miscalibration_area(norms, norms) == pytest.approx(expected)


def test_per_element_scales():
    rng = np.random.default_rng(3)
    sigma = rng.uniform(0.05, 0.5, size=4000)
    numbers = np.where(np.arange(4000) % 2 == 0, 1, 8)
    numbers[:5] = 3  # too few lithium atoms for their own factor
    scale = np.where(numbers == 1, 2.0, 5.0)
    errors = _gaussian_errors(sigma * scale, 1.0, seed=4)
    result = fit_force_calibration(sigma, errors, numbers)
    assert result.scale_per_element[1] == pytest.approx(2.0, rel=0.05)
    assert result.scale_per_element[8] == pytest.approx(5.0, rel=0.05)
    assert result.scale_per_element[3] == result.scale
    assert set(result.as_dict()['scale_per_element']) == {'1', '3', '8'}


@pytest.mark.parametrize(
    ('sigma', 'error', 'message'),
    [
        (np.ones(3), np.ones(4), 'same number of atoms'),
        (np.zeros(3), np.ones(3), 'every sigma is zero'),
        (np.ones(3), -np.ones(3), 'must be >= 0'),
        (np.array([1.0, np.nan]), np.ones(2), 'finite'),
        (np.array([]), np.array([]), 'at least one atom'),
    ],
)
def test_bad_input_is_refused(sigma, error, message):
    with pytest.raises(ValueError, match=message):
        fit_force_calibration(sigma, error)


def test_plot_is_written(sigma, tmp_path):
    errors = _gaussian_errors(sigma, 3.0)
    result = fit_force_calibration(sigma, errors)
    path = plot_force_calibration(sigma, errors, result, tmp_path / 'calibration.png')
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
