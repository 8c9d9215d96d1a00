"""Valid but hostile prompts: accepted, kept verbatim, and never turned into paths.

A prompt is data. Ten thousand characters, `../`, backslashes, shell metacharacters, emoji and
right-to-left text are all legitimate captions: the sweep file accepts them, the frozen `sweep.yaml`
keeps them byte for byte, and a real sweep writes every file inside its run folder. File names come
from trial ids (hex) and prompt ids (validated: letters, digits, '.', '_', '-'), through `safe_name`.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
import textwrap
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from t2a_ray.config import load_sweep, parse_sweep
from t2a_ray.errors import ConfigError
from t2a_ray.runfolder import RunFolder, safe_name

MARK = f"zz{uuid.uuid4().hex[:10]}"  # in every hostile prompt: any path named after a prompt holds it
HOSTILE = [
    ("A dog barks while rain falls on a tin roof. " * 230)[:10_000],
    f"../../../../tmp/{MARK}-escape",
    f"..\\..\\..\\Windows\\System32\\{MARK}",
    f"/etc/passwd /{MARK} ~/.ssh/{MARK} C:\\{MARK} \\\\server\\share\\{MARK}",
    f"$(touch /tmp/{MARK}-sub) `touch {MARK}-tick` ; rm -rf ~ | cat /etc/shadow && echo $HOME > {MARK}-redirect",
    f"'; DROP TABLE prompts; -- %s%n%x {{0}} {{prompt}} ${{HOME}} {MARK}",
    f"🐕 barks 🔊🎶 👩‍👩‍👧‍👦 {MARK}",
    f"\u202e{MARK}vaw.exe\u202c كلب ينبح ثم يمر قطار — כלב נובח",
    f"fullwidth／slash division∕slash fraction⁄slash {MARK}",
    f"bell \x07 escape \x1b[31m red \u200b zero\u200dwidth e\u0301 {MARK}",
    f"line one\nline two\r\nline three\u2028four {MARK}",
    f"   leading and trailing spaces, a tab\t {MARK}   ",
]


def sweep_doc(prompts: list[str], **extra) -> dict:
    return {
        "name": "hostile",
        "models": ["noop"],
        "weights": "tiny",
        "grid": {"steps": [1]},
        "prompts": {"text": prompts},
        **extra,
    }


# --------------------------------------------------------------------------------------------------
# The config accepts them and keeps them verbatim


def test_hostile_prompts_are_accepted_and_frozen_verbatim(tmp_path):
    sweep = parse_sweep(sweep_doc(HOSTILE, negative_prompt=HOSTILE[4]), tmp_path)
    assert [p.text for p in sweep.prompts] == HOSTILE
    frozen = tmp_path / "sweep.yaml"
    frozen.write_text(sweep.to_yaml(), encoding="utf-8")
    again = load_sweep(frozen)
    assert [p.text for p in again.prompts] == HOSTILE and again.negative_prompt == HOSTILE[4]
    assert [p.id for p in again.prompts] == [f"p{i}" for i in range(len(HOSTILE))]


prompt_text = st.one_of(
    st.text(min_size=1, max_size=200),
    st.lists(
        st.sampled_from(
            HOSTILE[1:]
            + [
                "../",
                "..\\",
                "/",
                "\\",
                "$(x)",
                "`x`",
                ";",
                "|",
                "&&",
                ">",
                "*",
                "~",
                "🎵",
                "\u202e",
                "\u200f",
                "\ufeff",
                "\x7f",
                "\x85",
            ]
        ),
        min_size=1,
        max_size=6,
    ).map("".join),
).filter(lambda t: t.strip() and "\x00" not in t)


@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(prompt_text, min_size=1, max_size=4))
def test_any_nonblank_text_is_a_valid_prompt_and_survives_the_frozen_sweep(texts):
    with tempfile.TemporaryDirectory() as d:
        sweep = parse_sweep(sweep_doc(texts), Path(d))
        again = parse_sweep(yaml.safe_load(sweep.to_yaml()), Path(d))
    assert [p.text for p in again.prompts] == texts


def csv_file(path: Path, rows: list[tuple[str, str]]) -> None:
    buf = io.StringIO()
    csv.writer(buf).writerows([("id", "caption"), *rows])
    path.write_text(buf.getvalue(), encoding="utf-8")


def test_hostile_captions_from_a_csv_are_accepted_verbatim(tmp_path):
    csv_file(tmp_path / "captions.csv", [(f"c{i}", t) for i, t in enumerate(HOSTILE)])
    sweep = parse_sweep({**sweep_doc([]), "prompts": {"file": "captions.csv"}}, tmp_path)
    assert [(p.id, p.text) for p in sweep.prompts] == [(f"c{i}", t) for i, t in enumerate(HOSTILE)]


@pytest.mark.parametrize(
    "bad_id",
    [
        "../x",
        "..",
        ".",
        ".hidden",
        "a/b",
        "a\\b",
        "/etc/passwd",
        "C:x",
        "$(id)",
        "a b",
        "~",
        "🎵",
        "é",
        "x" * 101,
        "",
        " x",
        "-x",
        "a\u202eb",
    ],
)
def test_prompt_ids_from_a_csv_are_validated(tmp_path, bad_id):
    csv_file(tmp_path / "captions.csv", [(bad_id, "a dog barks")])
    with pytest.raises(ConfigError) as info:
        parse_sweep({**sweep_doc([]), "prompts": {"file": "captions.csv"}}, tmp_path)
    assert info.value.key_path == "prompts.file row 2 id"


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(st.text(max_size=300), st.text(max_size=300))
def test_a_file_name_built_from_any_ids_stays_inside_the_run_folder(trial_id, prompt_id):
    root = Path("/runs/r")
    for part in (safe_name(trial_id), safe_name(prompt_id)):
        assert part and part not in (".", "..") and len(part) <= 120
        assert not set(part) & {"/", "\\", "\x00"}
    path = RunFolder(root).audio_file(trial_id, 0, prompt_id, 0)
    assert path.parent.parent == root / "audio" and ".." not in path.parts


# --------------------------------------------------------------------------------------------------
# A real sweep of them writes inside its run folder only


def _meter_missing() -> str | None:
    try:
        from t2a_ray.metering import open_meter  # noqa: F401
    except ImportError as e:
        return f"a real sweep needs t2a_ray.metering.open_meter: {e}"
    return None


def tree(root: Path) -> set[Path]:
    return {Path(d) / n for d, dirs, files in os.walk(root) for n in dirs + files}


def named_after_a_prompt(root: Path) -> list[Path]:
    found = []
    for d, dirs, files in os.walk(root, onerror=lambda e: None):
        found += [Path(d) / n for n in dirs + files if MARK in n]
    return found


@pytest.mark.slow
@pytest.mark.skipif(_meter_missing() is not None, reason=_meter_missing() or "")
def test_a_sweep_of_hostile_prompts_writes_only_inside_its_run_folder(tmp_path, monkeypatch, shared_ray):
    from t2a_ray.orchestrator.runner import LaunchOptions, run_sweep

    config = tmp_path / "hostile.yaml"
    config.write_text(
        textwrap.dedent("""
        name: hostile
        models: [noop]
        weights: tiny
        grid: {steps: [1]}
        warmup: 0
        save_audio: true
        metering: {idle_baseline_s: 0}
    """)
        + yaml.safe_dump({"prompts": {"text": HOSTILE}, "negative_prompt": HOSTILE[4]}, allow_unicode=True),
        encoding="utf-8",
    )
    sweep = load_sweep(config, device="cpu")
    run = RunFolder(tmp_path / "runs" / "hostile")
    run.create(sweep.to_yaml())
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # a write to a relative path would land here
    before = tree(tmp_path)

    outcome = run_sweep(run, LaunchOptions(gpus=0, address=shared_ray, progress=False))

    assert outcome.statuses == {"ok": 1}, outcome
    created = tree(tmp_path) - before
    assert created, "the sweep wrote nothing?"
    outside = sorted(p for p in created if not p.is_relative_to(run.root))
    assert outside == [], f"written outside the run folder: {outside}"
    # nothing anywhere named after a prompt: not here, not in the temp folder Ray uses for its sessions
    assert named_after_a_prompt(tmp_path) == [] and named_after_a_prompt(Path(tempfile.gettempdir())) == []
    # audio files are named by trial id, repeat, prompt id and index only
    wavs = sorted(run.audio_dir.rglob("*.wav"))
    assert len(wavs) == len(HOSTILE)
    assert all(
        re.fullmatch(r"[0-9a-f]{16}_r0_p\d+_0\.wav", w.name) and w.parent.parent == run.audio_dir
        for w in wavs
    )
    # one row per prompt, truncation recorded (noop has no text encoder: never truncated, never null)
    rows = pq.read_table(run.results).to_pylist()
    assert sorted(r["prompt_id"] for r in rows) == sorted(f"p{i}" for i in range(len(HOSTILE)))
    assert all(r["status"] == "ok" and r["prompt_truncated"] is False for r in rows)
    assert [p.text for p in load_sweep(run.sweep_yaml).prompts] == HOSTILE
