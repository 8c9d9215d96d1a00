"""An option several commands share is declared once (`t2a_ray/cli_options.py`), each command giving
its own help text."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from t2a_ray import cli
from t2a_ray.cli import main

# Two options that share a flag and nothing else: `analyze --results` takes globs (repeatable),
# `search-bench --results` one table file.
SAME_FLAG_OTHER_OPTION = {"--results"}


def _declared_in(path: Path) -> set[str]:
    """The flags of the `click.option(...)` calls written in a module."""
    flags = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "option"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            flags.add(node.args[0].value)
    return flags


def test_an_option_several_commands_share_is_declared_once_outside_the_commands():
    uses = Counter(opt for command in main.commands.values() for p in command.params for opt in p.opts)
    shared = {flag for flag, n in uses.items() if n > 1 and flag.startswith("--")}
    assert {"--out", "--gpus", "--address", "--no-progress"} <= shared  # the count sees the commands
    assert (shared - SAME_FLAG_OTHER_OPTION) & _declared_in(Path(cli.__file__)) == set()
