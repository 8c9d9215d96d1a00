"""Each quality metric's direction is declared once (`schema.QUALITY_METRICS`); the search, the run's
fronts and the figures' labels follow it."""

from __future__ import annotations

import pytest

from t2a_ray.analysis.pipeline import parse_quality
from t2a_ray.analysis.plots import axis_label
from t2a_ray.analysis.report import RUN_QUALITIES
from t2a_ray.analysis.tables import AnalysisError
from t2a_ray.config import parse_sweep
from t2a_ray.schema import QUALITY_METRICS, QUALITY_SENSES, quality_schema


def test_every_ranked_metric_is_a_numeric_column_of_the_quality_table_with_a_known_direction():
    schema = quality_schema()
    for metric, sense in QUALITY_METRICS.items():
        assert sense in QUALITY_SENSES
        assert str(schema.field(metric).type) == "double"


@pytest.mark.parametrize("metric", list(QUALITY_METRICS))
def test_a_figure_labels_a_metric_better_in_its_declared_direction(metric):
    better = "higher is better" if QUALITY_METRICS[metric] == "max" else "lower is better"
    assert better in axis_label(metric)
    assert better in axis_label(metric, QUALITY_METRICS[metric])


def test_a_run_ranks_its_fronts_by_every_declared_metric_in_its_direction():
    assert dict(RUN_QUALITIES) == dict(QUALITY_METRICS)


def test_the_search_ranks_what_the_sweep_scores_in_the_declared_direction(tmp_path):
    from t2a_ray.orchestrator.tune_searcher import qualities

    (tmp_path / "ref").mkdir()
    doc = {"name": "t", "models": ["noop"], "weights": "tiny", "prompts": {"text": ["rain"]}}
    both = parse_sweep({**doc, "quality": {"clap": True, "fad": {"reference": "ref"}}}, tmp_path)
    assert qualities(both) == [(m, QUALITY_METRICS[m]) for m in ("clap_mean", "fad")]
    assert qualities(parse_sweep({**doc, "quality": {"clap": True}}, tmp_path)) == [("clap_mean", "max")]
    assert qualities(parse_sweep(doc, tmp_path)) == []


def test_a_sense_outside_the_declared_ones_is_refused():
    assert parse_quality("fad:min") == ("fad", "min")
    with pytest.raises(AnalysisError, match="sense 'best' must be max or min"):
        parse_quality("fad:best")
