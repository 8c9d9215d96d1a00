"""The options several commands share, each declared once: its flag, the name the command receives it
by, its type and what it takes. Each command says in its own help what the option means there (where
`--out` writes, what `--gpus` defaults to), so the help text is an argument."""

from __future__ import annotations

from pathlib import Path

import click

from t2a_ray.units import JOULES_PER


def gpus_option(help: str):
    return click.option("--gpus", type=int, default=None, help=help)


def address_option(help: str):
    return click.option("--address", default=None, help=help)


def out_option(default: Path | None, help: str, *, file_ok: bool = False):
    """`--out DIR` (`out_dir`), a folder; `file_ok`: any path (the command checks it itself)."""
    kind = click.Path(path_type=Path) if file_ok else click.Path(file_okay=False, path_type=Path)
    return click.option(
        "--out", "out_dir", type=kind, default=default, show_default=default is not None, help=help
    )


def name_option(help: str):
    return click.option("--name", default=None, help=help)


def set_option(help: str):
    return click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=help)


no_progress_option = click.option("--no-progress", is_flag=True, help="No progress line.")


# The options of a results table (`analyze --results`, `search-bench`)
def energy_option(help: str, *, required: bool = False):
    return click.option("--energy", "energy_col", required=required, default=None, help=help)


def energy_unit_option(help: str):
    return click.option("--energy-unit", type=click.Choice(list(JOULES_PER)), default=None, help=help)


def quality_option(help: str, *, required: bool = False):
    return click.option("--quality", "qualities", multiple=True, required=required, help=help)


def group_option(help: str):
    return click.option("--group", "group_cols", default="", help=help)


def config_cols_option(help: str, *, required: bool = False):
    return click.option("--config-cols", required=required, default=None, help=help)
