"""Analysis: quality scores, Pareto fronts, scaling fits and the report.

This room reads tables and computes on arrays. It never imports Ray, torch or transformers (the CLAP model
lives in `t2a_ray.adapters.clap`), so `t2a-ray analyze` on a CSV starts fast.

Entry points (the CLI calls these):

* `analyze_run(run_dir)` and `analyze_table(df, energy_col, qualities, group_cols, out_dir)` → a `Report`:
  the frozen `Analysis` (`pipeline.build` builds it, `render` renders it) written to its folder by
  `report.write_report`, with `.text()` (tables to print), `.report_path` and the analysis's figures;
* `inputs.read_tables(patterns)` for the field's tables (several files, CodeCarbon, `--extract`, `--join`);
* `load_table(path)` for .csv/.parquet (AnalysisError, a ValueError, on anything else);
* `quality`: FAD, FAD∞ and the CLAP score on embeddings, for the worker's scorer;
  `read_quality_table(path)` / `write_quality_table(rows, path)` through the quality schema.
"""

from t2a_ray.analysis.fronts import Front, compute_fronts, hypervolume, knee_index, pareto_mask
from t2a_ray.analysis.report import (
    Analysis,
    Report,
    analyze_run,
    analyze_table,
    parse_quality,
    read_run_results,
)
from t2a_ray.analysis.tables import (
    QUALITY_COLUMNS,
    AnalysisError,
    load_table,
    read_quality_table,
    write_quality_table,
)

__all__ = [
    "QUALITY_COLUMNS",
    "Analysis",
    "Report",
    "AnalysisError",
    "Front",
    "analyze_run",
    "analyze_table",
    "compute_fronts",
    "hypervolume",
    "knee_index",
    "load_table",
    "parse_quality",
    "pareto_mask",
    "read_quality_table",
    "read_run_results",
    "write_quality_table",
]
