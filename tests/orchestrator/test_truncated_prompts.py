"""A prompt longer than a model's text encoder reads is never cut short silently: the launch printout
names the prompts certain to be cut (more words than tokens) before anything loads, and the report names
every prompt the tokenizer cut (its rows' `prompt_truncated`), with the token limit."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from t2a_ray.adapters.base import TINY_TEXT_TOKENS
from t2a_ray.cli import main

pytestmark = pytest.mark.slow

WORDY = " ".join(["dog"] * (TINY_TEXT_TOKENS + 1))  # more words than tokens: certain to be cut
DENSE = " ".join(["Supercalifragilisticexpialidocious"] * 4)  # few words, many tokens each
SWEEP = f"""\
name: cut
models: [audioldm]
weights: tiny
dtype: float32
grid: {{steps: 1, duration_s: 0.2}}
prompts:
  items:
    - {{id: wordy, text: "{WORDY}"}}
    - {{id: dense, text: "{DENSE}"}}
    - {{id: short, text: "a dog"}}
metering: {{idle_baseline_s: 0.1}}
"""


def test_truncated_prompts_are_named_at_launch_and_in_the_report(tmp_path, write_sweep, shared_ray):
    args = [
        "launch",
        "--config",
        str(write_sweep(SWEEP)),
        "--gpus",
        "0",
        "--out",
        str(tmp_path),
        "--no-progress",
        "--address",
        shared_ray,
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    before, _, after = result.output.partition(" trial: ran ")
    assert "note: prompt 'wordy' is cut short: audioldm (tiny) reads 32 tokens of a prompt." in before
    assert "'dense'" not in before  # four words: only the tokenizer can tell
    rows = pq.read_table(tmp_path / "cut" / "results.parquet").to_pylist()
    assert {r["prompt_id"]: r["prompt_truncated"] for r in rows} == {
        "wordy": True,
        "dense": True,
        "short": False,
    }
    assert "prompts 'dense', 'wordy' were cut short: audioldm (tiny) reads 32 tokens of a prompt." in after
    report = (tmp_path / "cut" / "report" / "index.html").read_text()
    assert "were cut short" in report
