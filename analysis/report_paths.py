"""The files of a report folder: one place for their names (`report` writes them, `render` links them)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ReportPaths:
    """Where a report folder's files are: index.html, the CSVs, the plots."""

    out_dir: Path

    @property
    def report_path(self) -> Path:
        return self.out_dir / "index.html"

    @property
    def fronts_csv_path(self) -> Path:
        return self.out_dir / "fronts.csv"

    @property
    def configs_csv_path(self) -> Path:
        return self.out_dir / "configs.csv"

    @property
    def fits_csv_path(self) -> Path:
        return self.out_dir / "fits.csv"

    def table_csv_path(self, key: str) -> Path:
        """`report/<key>.csv`: one of `pipeline.TABLE_CSVS`, written as the report shows it."""
        return self.out_dir / f"{key}.csv"

    def plot_paths(self, names: Iterable[str]) -> list[Path]:
        return [self.out_dir / name for name in names]
