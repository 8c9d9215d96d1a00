"""Bad input, fuzzed: invalid sweep and prompt files through the real CLI.

Every generated input goes through `t2a-ray launch --config F --out DIR --gpus 0` (click's CliRunner,
in-process) and must be refused the same way: exit code 2, exactly one line `error: …` naming where
the problem is, no traceback, and nothing written — not under DIR, not next to the config, not in the
working directory. Hypothesis runs derandomized (same inputs on every run); each test counts the
distinct files it produced and asserts a floor, so the suite cannot silently shrink.
"""

from __future__ import annotations

import copy
import csv
import io
import math
import traceback
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from t2a_ray.adapters import get_card, model_ids
from t2a_ray.adapters.base import DTYPES, WEIGHT_MODES
from t2a_ray.cli import main
from t2a_ray.config import NAME_RE, PROMPT_ID_RE, TOP_KEYS, parse_sweep
from t2a_ray.errors import ConfigError

# A valid sweep; every case below breaks exactly one thing in it (or in the bytes of its file).
BASE: dict[str, Any] = {
    "name": "fuzz",
    "models": ["noop"],
    "weights": "tiny",
    "grid": {"steps": [1, 2]},
    "prompts": {"text": ["a dog barks"]},
}
NOOP = get_card("noop")


def fuzz(examples: int) -> settings:
    """Derandomized: the same inputs on every run and machine (a CI failure replays locally)."""
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


@pytest.fixture
def refuse(tmp_path, monkeypatch):
    """Run one invalid input through the CLI and check how it is refused; count distinct inputs."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # anything written to a relative path would land here
    seen: set[tuple] = set()
    cases = iter(range(10**9))

    def check(files: dict[str, bytes | None], fragment: str) -> str:
        case = tmp_path / f"case{next(cases)}"
        case.mkdir()
        for name, data in files.items():
            if data is None:
                (case / name).mkdir()  # a folder where a file is expected
            else:
                (case / name).write_bytes(data)
        before = sorted(p.relative_to(case) for p in case.rglob("*"))
        out = case / "runs"
        result = CliRunner().invoke(
            main, ["launch", "--config", str(case / "sweep.yaml"), "--out", str(out), "--gpus", "0"]
        )
        crash = (
            "".join(traceback.format_exception(*result.exc_info))
            if result.exc_info and result.exc_info[0] is not SystemExit
            else ""
        )
        shown = f"{files!r:.600}\n--- output:\n{result.output}\n{crash}"
        assert result.exit_code == 2, shown
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1, shown
        line = lines[0]
        assert line.startswith("error: ") and len(line) > len("error: "), shown
        assert " = " in line, shown  # `where = value: what is allowed`
        assert fragment in line, f"expected {fragment!r} in the message\n{shown}"
        assert "Traceback" not in result.output, shown
        assert not out.exists(), shown
        assert sorted(p.relative_to(case) for p in case.rglob("*")) == before, shown
        assert not any(cwd.iterdir()), shown
        seen.add(tuple(sorted((k, v) for k, v in files.items())))
        return line

    check.seen = seen
    return check


def sweep_file(doc: Any) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode("utf-8")


def base_with(path: tuple, value: Any) -> dict[str, Any]:
    """BASE with the value at `path` replaced (a `_DELETE` value removes the key)."""
    doc = copy.deepcopy(BASE)
    node = doc
    for key in path[:-1]:
        node = node.setdefault(key, {})
    if value is _DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return doc


_DELETE = object()


def test_the_base_sweep_is_valid(tmp_path):
    assert parse_sweep(BASE, tmp_path).name == "fuzz"


# --------------------------------------------------------------------------------------------------
# Strategies: values that are wrong for one key


def text(**kw) -> st.SearchStrategy[str]:
    return st.text(**kw).filter(lambda t: t != "default")  # "default" is a valid value of every number axis


def key_text(**kw) -> st.SearchStrategy[str]:
    """An unknown key (NUL-free: a key holding NUL is refused as such, before it is found unknown)."""
    return text(**kw).filter(lambda t: "\x00" not in t)


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), text(max_size=12))
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
not_mapping = junk.filter(lambda v: not isinstance(v, dict) and v is not None)
not_str = junk.filter(lambda v: not isinstance(v, str))
not_bool = junk.filter(lambda v: not isinstance(v, bool))


def not_int_in(low: float, high: float) -> st.SearchStrategy[Any]:
    """Anything but an integer from low to high (bools are not integers here)."""
    return st.one_of(
        st.integers().filter(lambda n: not low <= n <= high),
        st.integers(min_value=10**300, max_value=10**400),
        st.floats(),
        text(max_size=8),
        st.booleans(),
        st.lists(st.integers(), min_size=1, max_size=2),
        st.none(),
    )


def not_number_in(low: float, high: float) -> st.SearchStrategy[Any]:
    """Anything but a finite number from low to high."""
    return st.one_of(
        st.floats().filter(lambda x: not (math.isfinite(x) and low <= x <= high)),
        st.integers().filter(lambda n: not low <= n <= high),
        st.integers(min_value=10**300, max_value=10**400),
        text(max_size=8),
        st.booleans(),
        st.dictionaries(text(max_size=4), st.integers(), min_size=1, max_size=2),
    )


def axis_bad(spec) -> st.SearchStrategy[Any]:
    low = -math.inf if spec.minimum is None else spec.minimum
    high = math.inf if spec.maximum is None else spec.maximum
    one = not_int_in(low, high) if spec.kind is int else not_number_in(low, high)
    good = spec.default
    # a bad scalar, a list holding one bad value among good ones, or an empty list (zero trials)
    return st.one_of(
        one.filter(lambda v: not isinstance(v, list)),
        one.map(lambda v: [good, v]).filter(lambda vs: not isinstance(vs[1], list)),
        st.just([]),
    )


def grid_mutation() -> st.SearchStrategy[tuple[tuple, Any, str]]:
    axes = st.sampled_from(NOOP.params).flatmap(
        lambda spec: axis_bad(spec).map(lambda v: (("grid", spec.name), v, f"grid.{spec.name}"))
    )
    unknown_axis = (
        key_text(max_size=20)
        .filter(lambda a: a not in NOOP.param_names)
        .map(lambda a: (("grid",), {a: 1}, "grid."))
    )
    not_a_grid = not_mapping.map(lambda v: (("grid",), v, "grid"))
    twice = st.sampled_from([[1, 1], [2, 2.0], [10, "default"]]).map(lambda v: (("grid", "steps"), v, "grid"))
    return st.one_of(axes, unknown_axis, not_a_grid, twice)


def model_mutation() -> st.SearchStrategy[tuple[tuple, Any, str]]:
    unknown = text(max_size=24).filter(lambda m: m not in model_ids())
    entries = st.one_of(
        unknown,
        st.integers(),
        unknown.map(lambda m: {"id": m}),
        st.just({"id": "noop", "bogus": 1}),
        key_text(min_size=1, max_size=8)
        .filter(lambda k: k not in NOOP.options)
        .map(lambda k: {"id": "noop", "options": {k: 1}}),
        not_mapping.map(lambda v: {"id": "noop", "options": v}),
        not_str.filter(lambda v: v is not None).map(lambda v: {"id": "noop", "repo": v}),
        st.just({"id": "noop", "options": {1: "a", "fault": "none"}}),
    )
    lists = st.one_of(
        st.just([]),
        st.just(["noop", "noop"]),
        st.lists(entries, min_size=1, max_size=2).map(lambda es: ["noop", *es]),
        st.integers(),
        st.floats(),
    )
    return lists.map(lambda v: (("models",), v, "models"))


def prompts_mutation() -> st.SearchStrategy[tuple[tuple, Any, str]]:
    bad_id = st.one_of(
        text(max_size=120).filter(lambda t: not PROMPT_ID_RE.match(t)),
        st.integers(max_value=-1),
        st.floats(),
        st.lists(st.integers(), max_size=2),
    )
    blank = st.text(alphabet=" \t\n\r\u00a0\u2003", max_size=5)
    cases = st.one_of(
        st.just(_DELETE).map(lambda v: (v, "prompts")),
        not_mapping.map(lambda v: (v, "prompts")),
        st.just({}).map(lambda v: (v, "prompts")),
        st.just({"text": ["a"], "file": "p.txt"}).map(lambda v: (v, "prompts")),
        key_text(min_size=1, max_size=8)
        .filter(lambda k: k not in ("text", "file", "items"))
        .map(lambda k: ({"text": ["a"], k: 1}, "prompts.")),
        st.one_of(
            st.just([]), st.none(), st.integers(), blank.map(lambda b: [b]), not_str.map(lambda v: [v])
        ).map(lambda v: ({"text": v}, "prompts.text")),
        bad_id.map(lambda i: ({"items": [{"id": i, "text": "a"}]}, "prompts.items[0]")),
        st.just(({"items": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}, "prompts")),
        not_str.map(lambda v: ({"file": v}, "prompts.file")),
    )
    return cases.map(lambda c: (("prompts",), c[0], c[1]))


def number_mutation() -> st.SearchStrategy[tuple[tuple, Any, str]]:
    ranges = {
        "repeats": (1, 10_000),
        "warmup": (0, 100),
        "seed": (0, 2**63 - 1),
        "max_trial_retries": (0, 100),
    }
    ints = st.sampled_from(sorted(ranges)).flatmap(
        lambda k: not_int_in(*ranges[k]).map(lambda v: ((k,), v, k))
    )
    metering = {
        "min_window_s": (0.0, 3600.0),
        "idle_baseline_s": (0.0, 3600.0),
        "sample_interval_s": (0.001, 0.05),  # the meter's MAX_SAMPLE_INTERVAL_S
    }
    meter = st.sampled_from(sorted(metering)).flatmap(
        lambda k: not_number_in(*metering[k]).map(lambda v: (("metering", k), v, f"metering.{k}"))
    )
    carbon = (
        not_number_in(0.0, 10_000.0)
        .filter(lambda v: v is not None)
        .map(lambda v: (("carbon", "intensity_g_per_kwh"), v, "carbon.intensity_g_per_kwh"))
    )
    return st.one_of(ints, meter, carbon)


def section_mutation() -> st.SearchStrategy[tuple[tuple, Any, str]]:
    unknown = key_text(min_size=1, max_size=10)
    return st.one_of(
        st.sampled_from(["metering", "quality", "carbon"]).flatmap(
            lambda k: not_mapping.map(lambda v: ((k,), v, k))
        ),
        unknown.filter(lambda k: k not in ("min_window_s", "idle_baseline_s", "sample_interval_s")).map(
            lambda k: (("metering",), {k: 1}, "metering.")
        ),
        unknown.filter(lambda k: k not in ("clap", "fad")).map(lambda k: (("quality",), {k: 1}, "quality.")),
        unknown.filter(lambda k: k != "intensity_g_per_kwh").map(lambda k: (("carbon",), {k: 1}, "carbon.")),
        st.one_of(st.integers(), st.floats(), st.just(""), st.lists(st.integers(), max_size=2)).map(
            lambda v: (("quality", "clap"), v, "quality.clap")
        ),
        st.one_of(
            not_mapping,
            st.just({"reference": "no-such-folder"}),
            st.just({"reference": 5}),
            st.just({"ref": "x"}),
        ).map(lambda v: (("quality", "fad"), v, "quality.fad")),
    )


def scalar_mutation() -> st.SearchStrategy[tuple[tuple, Any, str]]:
    return st.one_of(
        st.one_of(text(max_size=110).filter(lambda n: not NAME_RE.match(n)), not_str).map(
            lambda v: (("name",), v, "name")
        ),
        st.one_of(
            text(max_size=12).filter(lambda w: w not in WEIGHT_MODES), not_str.filter(lambda v: v is not None)
        ).map(lambda v: (("weights",), v, "weights")),
        st.one_of(
            text(max_size=12).filter(lambda d: d not in (*DTYPES, "auto")),
            not_str.filter(lambda v: v is not None),
        ).map(lambda v: (("dtype",), v, "dtype")),
        not_str.filter(lambda v: v is not None).map(lambda v: (("negative_prompt",), v, "negative_prompt")),
        not_bool.map(lambda v: (("save_audio",), v, "save_audio")),
        st.one_of(key_text(max_size=16), st.integers(), st.booleans())
        .filter(lambda k: k not in TOP_KEYS)
        .map(lambda k: ((k,), 1, "unknown key")),
        st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff"]).flatmap(  # YAML's "\0" and "\ud800" escapes
            lambda t: st.sampled_from(
                [("negative_prompt",), ("prompts", "text"), ("name",), ("models",)]
            ).map(lambda path: (path, [t] if path[-1] in ("text", "models") else t, path[0]))
        ),
    )


MUTATIONS = st.one_of(
    grid_mutation(),
    model_mutation(),
    prompts_mutation(),
    number_mutation(),
    section_mutation(),
    scalar_mutation(),
)


def yaml_or_none(doc: Any) -> bytes | None:
    try:
        return sweep_file(doc)
    except (yaml.YAMLError, UnicodeEncodeError):
        return None


def test_invalid_values_are_refused_in_one_line(refuse, tmp_path):
    @fuzz(260)
    @given(MUTATIONS)
    def check(mutation):
        path, value, fragment = mutation
        data = yaml_or_none(base_with(path, value))
        assume(data is not None)
        refuse({"sweep.yaml": data}, fragment)

    check()
    assert len(refuse.seen) >= 200, len(refuse.seen)


# --------------------------------------------------------------------------------------------------
# Files that are not YAML, or not a mapping, or not UTF-8

BASE_TEXT = sweep_file(BASE).decode()
BREAKERS = [
    "[",
    "{",
    "]",
    "}",
    ": :",
    "\t",
    "&",
    "*nope",
    "? ",
    "'",
    '"',
    "@",
    "`",
    "%",
    "- - -\n  x",
    "!!binary 5",
    "!!python/object/apply:os.system ['touch PWNED']",
    "&a [*a",
    "--- \n...\n---",
    "key: [1,",
    "\n  bad indent: 1\n",
]


def _valid(data: bytes) -> bool:
    """Whether `data` is a valid sweep: which inputs a test skips. Read with libyaml, which reads what
    PyYAML's own scanner reads, where there is one: that scanner's time grows with the square of the
    nesting depth, and the CLI under test reads every input with it already."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        parse_sweep(yaml.load(data.decode("utf-8"), Loader=loader), Path("."))  # noqa: S506 — a safe loader
        return True
    except (ConfigError, yaml.YAMLError, UnicodeDecodeError, ValueError, RecursionError):
        return False


broken_texts = st.one_of(
    # cut short at any point
    st.integers(0, len(BASE_TEXT) - 1).map(lambda k: (BASE_TEXT[:k].encode(), "")),
    # a token that breaks YAML, put anywhere
    st.tuples(st.integers(0, len(BASE_TEXT)), st.sampled_from(BREAKERS)).map(
        lambda t: ((BASE_TEXT[: t[0]] + t[1] + BASE_TEXT[t[0] :]).encode(), "")
    ),
    # unsafe tags are refused by the safe loader, never run
    st.sampled_from(
        [
            "!!python/object/apply:os.system ['touch PWNED']\n",
            "x: !!python/name:os.system\n",
            "name: !!python/object/new:str [a]\n",
            "!!python/object/apply:subprocess.call [[touch, PWNED]]\n",
        ]
    ).map(lambda t: (t.encode(), "(yaml)")),
    # the top level is not a mapping
    st.one_of(
        st.integers(), st.floats(allow_nan=False), text(max_size=20), st.lists(st.integers(), max_size=3)
    ).map(lambda v: (yaml.safe_dump(v).encode(), "")),
    st.sampled_from([b"", b"\n", b"# only a comment\n", b"---\n", b"~\n", b"[]\n"]).map(
        lambda b: (b, "(top level)")
    ),
    # deep nesting and alias bombs
    st.integers(17, 3000).map(lambda n: (("a: " + "[" * n + "]" * n + "\n").encode(), "")),
    st.integers(3, 9).map(
        lambda n: (
            (
                "a: &a0 [x,x,x,x,x,x,x,x,x,x]\n"
                + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, n))
                + BASE_TEXT
            ).encode(),
            "",
        )
    ),
    st.just(("seed: &s [*s]\n" + BASE_TEXT).encode()).map(lambda b: (b, "seed")),
    # dates that do not exist, integers too long for Python to read
    st.sampled_from(["seed: 2024-02-30\n", "seed: 2023-13-01\n", "seed: " + "7" * 5000 + "\n"]).map(
        lambda t: ((t + BASE_TEXT).encode(), "(yaml)")
    ),
)


def test_broken_yaml_is_refused_in_one_line(refuse):
    @fuzz(120)
    @given(broken_texts)
    def check(case):
        data, fragment = case
        assume(not _valid(data))
        refuse({"sweep.yaml": data}, fragment)

    check()
    assert not Path("PWNED").exists()
    assert len(refuse.seen) >= 90, len(refuse.seen)


bad_bytes = st.one_of(
    # not UTF-8: a stray byte, an overlong form, an encoded surrogate, Latin-1 text, UTF-16
    st.tuples(
        st.integers(0, len(BASE_TEXT)),
        st.sampled_from([b"\xff", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\x80", b"\xf5\x80\x80\x80"]),
    ).map(lambda t: (BASE_TEXT.encode()[: t[0]] + t[1] + BASE_TEXT.encode()[t[0] :], "(file)")),
    st.just((BASE_TEXT.replace("a dog barks", "un chien aboie très fort").encode("latin-1"), "(file)")),
    st.just((BASE_TEXT.encode("utf-16"), "(file)")),
    # NUL and other characters YAML refuses
    st.tuples(
        st.integers(0, len(BASE_TEXT)), st.sampled_from(["\x00", "\x01", "\x07", "\x1b", "\x7f", "\ufffe"])
    ).map(lambda t: ((BASE_TEXT[: t[0]] + t[1] + BASE_TEXT[t[0] :]).encode(), "(yaml)")),
    # binary
    st.binary(min_size=1, max_size=64).map(lambda b: (b, "")),
)


def test_files_that_are_not_text_are_refused_in_one_line(refuse):
    @fuzz(100)
    @given(bad_bytes)
    def check(case):
        data, fragment = case
        assume(not _valid(data))
        refuse({"sweep.yaml": data}, fragment)

    check()
    assert len(refuse.seen) >= 80, len(refuse.seen)


# --------------------------------------------------------------------------------------------------
# Prompt files


def csv_bytes(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue().encode("utf-8")


column = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n\ufeff"),
    min_size=1,
    max_size=10,
)
blank_text = st.text(alphabet=" \t\r\n\u00a0\u2003\u3000", max_size=20)
bad_prompt_id = text(max_size=110).filter(
    lambda t: not PROMPT_ID_RE.match(t) and "\x00" not in t and "\r" not in t
)

prompt_files: st.SearchStrategy[tuple[str, bytes | None, str]] = st.one_of(
    # empty, blank
    st.sampled_from(["p.txt", "p.csv"]).map(lambda n: (n, b"", "prompts.file")),
    blank_text.map(lambda t: ("p.txt", t.encode(), "holds no prompts")),
    # binary, NUL bytes, not UTF-8
    st.tuples(st.sampled_from(["p.txt", "p.csv"]), st.binary(max_size=40), st.integers(0, 40)).map(
        lambda t: (t[0], t[1][: t[2]] + b"\x00" + t[1][t[2] :], "NUL")
    ),
    st.tuples(
        st.sampled_from(["p.txt", "p.csv"]),
        st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xe9t\xe9"]),
        st.integers(0, 30),
    ).map(
        lambda t: (
            t[0],
            b"id,caption\nx,a dog barks\n"[: t[2]] + t[1] + b"id,caption\nx,a dog barks\n"[t[2] :],
            "not UTF-8",
        )
    ),
    st.just(("p.txt", "un chien aboie".encode("utf-16"), "prompts.file")),
    # CSV without the columns, with only a header, with bad ids or blank captions, with ids twice
    st.lists(column, min_size=1, max_size=4, unique=True)
    .filter(lambda cols: not {"id", "caption"} <= set(cols))
    .map(lambda cols: ("p.csv", csv_bytes([cols, ["1"] * len(cols)]), "columns id and caption")),
    st.just(("p.csv", b"id,caption\n", "no rows")),
    bad_prompt_id.map(
        lambda i: ("p.csv", csv_bytes([["id", "caption"], [i, "a dog barks"]]), "prompts.file row 2 id")
    ),
    blank_text.map(
        lambda t: ("p.csv", csv_bytes([["id", "caption"], ["x", t]]), "prompts.file row 2 caption")
    ),
    st.just(("p.csv", b"id,caption\na,one\na,two\n", "unique")),
    # wrong extension, a folder, a caption over the CSV field limit
    st.sampled_from(["p.json", "p.yaml", "p.tsv", "p", "p.csv.gz", ".csv"]).map(
        lambda n: (n, b"id,caption\nx,y\n", "must end in")
    ),
    st.just(("p.csv", None, "no such file")),
    st.just(("p.csv", b'id,caption\nx,"' + b"a" * 200_000 + b'"\n', "not valid CSV")),
)


def test_invalid_prompt_files_are_refused_in_one_line(refuse):
    @fuzz(150)
    @given(prompt_files)
    def check(case):
        name, data, fragment = case
        sweep = sweep_file({**BASE, "prompts": {"file": name}})
        line = refuse({"sweep.yaml": sweep, name: data}, fragment)
        assert "prompts.file" in line

    check()
    assert len(refuse.seen) >= 110, len(refuse.seen)


def test_a_missing_prompt_file_and_a_missing_config_are_refused(refuse, tmp_path):
    refuse({"sweep.yaml": sweep_file({**BASE, "prompts": {"file": "nowhere.csv"}})}, "no such file")
    result = CliRunner().invoke(
        main,
        ["launch", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "runs"), "--gpus", "0"],
    )
    assert (
        result.exit_code == 2
        and result.output.startswith("error: --config")
        and result.output.count("\n") == 1
    )
    result = CliRunner().invoke(
        main,
        [
            "launch",
            "--config",
            str(tmp_path / ("x" * 300 + ".yaml")),
            "--out",
            str(tmp_path / "runs"),
            "--gpus",
            "0",
        ],
    )
    assert (
        result.exit_code == 2
        and result.output.startswith("error: --config")
        and result.output.count("\n") == 1
    )


def test_an_oversized_grid_is_refused_before_it_is_expanded(refuse):
    grid = {"steps": list(range(1, 1001)), "batch_size": list(range(1, 257))}  # 256,000 trials
    line = refuse({"sweep.yaml": sweep_file({**BASE, "grid": grid})}, "grid")
    assert "256000 trials" in line
