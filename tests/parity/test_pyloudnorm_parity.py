"""The −1 dBFS peak normalisation (`peak_normalise`) against pyloudnorm's ``normalize.peak``, which
stable-audio-metrics calls on each clip, recorded by `record_pyloudnorm.py`."""

import numpy as np
import pytest
from record_pyloudnorm import OUT, TARGET_DBFS, inputs

from t2a_ray.analysis.quality import PEAK_DBFS, peak_normalise

FLOAT32_EPS = float(np.finfo(np.float32).eps)
SOUNDING = ["noise", "at_minus_1_dbfs", "above_0_dbfs", "quiet", "negative_peak"]


@pytest.fixture(scope="module")
def recorded():
    with np.load(OUT) as data:
        return {k: data[k] for k in data.files}


def test_the_recording_is_of_the_projects_target():
    assert TARGET_DBFS == PEAK_DBFS


@pytest.mark.parametrize("name", SOUNDING)
def test_each_clip_equals_pyloudnorms_peak_normalisation(recorded, name):
    ours = peak_normalise(inputs()[name][None])[0]
    assert ours.dtype == np.float32  # pyloudnorm keeps numpy's float64 product: equal to float32 rounding
    np.testing.assert_allclose(ours, recorded[name], rtol=FLOAT32_EPS, atol=0)
    # −1 dBFS is below full scale: pyloudnorm neither clips nor warns, even for a clip above 0 dBFS
    assert recorded[f"{name}_warnings"].size == 0


def test_rows_are_clips_normalised_one_by_one(recorded):
    # stable-audio-metrics calls pyloudnorm once per mono clip; a 2-D array given to pyloudnorm would
    # share one gain (its overall peak) between the rows, which is not what the study did
    clips = inputs()
    ours = peak_normalise(np.stack([clips[name] for name in [*SOUNDING, "silence"]]))
    for row, name in enumerate(SOUNDING):
        np.testing.assert_allclose(ours[row], recorded[name], rtol=FLOAT32_EPS, atol=0)
    np.testing.assert_array_equal(ours[-1], 0.0)


def test_a_silent_clip_stays_silent_where_pyloudnorm_makes_it_nan(recorded):
    assert np.isnan(recorded["silence"]).all()
    assert any("divide by zero" in str(w) for w in recorded["silence_warnings"])
    ours = peak_normalise(inputs()["silence"][None])
    np.testing.assert_array_equal(ours, 0.0)
