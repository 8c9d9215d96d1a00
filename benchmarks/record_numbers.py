"""Every number a record states, with where it stands: the extractor behind recompute.py's coverage.

A record is README.md, benchmarks/results/*.md or docs/results/**/README.md. What is not a figure is
left out before numbers are read: code (fenced, indented, `inline`), link targets, dates and times,
version numbers (three parts, or after a software name), and digits inside a name (H100, fp16,
GPU-2d873470, audioldm2, make-an-audio-2, SC'24). What remains is a figure when it stands in a
table's body (a table is results), or, in prose, when it is written with decimals, a % or ×, an
exponent, or an energy, power, memory or temperature unit: prose integers without such a unit are
counts and settings (2 cores, 7 repeats, steps 10/25/50). A record may also list, with a reason,
numbers of its prose that are settings rather than measurements (recompute.py's `SETTINGS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# a number not glued to a name, a path or a version: "1.91×", "−12.7 %", "10,000", "3.5e-11"
NUMBER = re.compile(
    r"(?<![\w.\-−#@'’+])(?<![A-Za-z_.]/)(?P<sign>[-−+])?(?P<num>\d+(?:,\d{3})+|\d+(?:\.\d+)?(?:e[-+]?\d+)?)"
    r"(?!\w|/(?!s\b)[A-Za-z_.]|\.\d|-\w|:\d|’\d)(?P<suffix>\s?(?:%|×))?"
)
UNIT = re.compile(r"\s?(?:J|W|Wh|kWh|mJ|ms|GB|MB|°C)(?!\w)")
IGNORED = [
    re.compile(r"```.*?```", re.S),  # fenced code on one line (rare), see _lines for blocks
    re.compile(r"`[^`]*`"),  # inline code: commands, flags, paths, column names
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"https?://\S+"),
    re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2})?)?"),  # dates, date-times
    re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s?[–-]\s?\d{1,2}:\d{2})?(?:\s?UTC)?"),  # times
    re.compile(r"\b\d+\.\d+\.\d+\w*"),  # versions: 580.159.04, 1.1.0
    re.compile(
        r"(?i)\b(?:torch|cuda|python|ray|diffusers|transformers|driver|version|commit|v)\s*[≥>=]?\s*\d[\w.]*"
    ),
    re.compile(r"\b(?:AudioLDM|Tango|Make-An-Audio) 2\b"),  # a model's name, not a figure
    re.compile(r"\bexit \d+"),  # an exit code
    re.compile(r"\b\d+\s?×\s?(?=[A-Z])"),  # a count of cards: 2×H200, 2× NVIDIA
    re.compile(
        r"(?i)\b(?:issue|issues|check|checks|offset|run|round|attempt|step)\s+\d+(?:\s?(?:and|,|–)\s?\d+)*"
    ),
    re.compile(r"<!--(?! figure:).*?-->"),  # comments other than recompute's figure lines
    re.compile(r"\b95\s?%(?=\s?(?:CI|confidence|interval)|$)"),  # the confidence level, not a figure
    re.compile(r"\b\d+\s?W(?= limit)|power limit \d+\s?W"),  # the card's power limit: its specification
]
MARKERS = ("not recomputable", "figure from outside", "figures from outside")


@dataclass(frozen=True)
class Number:
    record: str
    line: int  # 1-based
    text: str  # the number as written, with its sign and suffix: "−12.7 %", "1.91×"
    num: str  # the digits alone, the key a check claims it by: "12.7", "1.91"
    section: int  # index of the section (by heading) it stands in
    table: int | None  # index of the record's table, None in prose
    row: int | None  # body row within the table, 0-based
    col: int | None

    @property
    def value(self) -> float:
        v = float(self.num.replace(",", ""))
        return -v if self.text.lstrip().startswith(("-", "−")) else v


@dataclass(frozen=True)
class Section:
    heading: str
    level: int
    start: int  # first line (1-based), the heading's
    end: int  # last line of its direct body (before the next heading of any level)
    marked: bool  # a blockquote of its direct body says its figures are not recomputable / from outside


def marked_lines(text: str) -> set[int]:
    """The lines whose figures a marker covers: every line of a section whose direct body has a
    blockquote saying "not recomputable" (or "from outside"), and every line of a paragraph or list
    item that says so itself, beside its figures."""
    out: set[int] = set()
    for s in sections(text):
        if s.marked:
            out |= set(range(s.start, s.end + 1))
    block: list[int] = []
    lines = text.splitlines()
    for i, line in enumerate([*lines, ""], 1):
        starts = not line.strip() or line.lstrip().startswith(("- ", "* ", "#", "|", ">"))
        if starts and block:
            if any(m in " ".join(lines[k - 1] for k in block).lower() for m in MARKERS):
                out |= set(block)
            block = []
        if line.strip():
            block.append(i)
    return out


def _lines(text: str) -> list[tuple[int, str, str]]:
    """(line number, text, kind) for each line: "fenced" (inside a fenced block or its fence),
    "indented" (indented code) or "" (the record's text)."""
    out, fenced, prev_blank, code_block, prev_text = [], False, True, False, ""
    for i, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            out.append((i, line, "fenced"))
            continue
        indented = line.startswith("    ") and not line.lstrip().startswith(("-", "*", "|"))
        # an indented block after a blank line that follows a heading or a line ending in ":"
        code_block = indented and (
            code_block or (prev_blank and prev_text.rstrip().endswith(":") or prev_text.startswith("#"))
        )
        out.append((i, line, "fenced" if fenced else "indented" if code_block else ""))
        prev_blank = not line.strip()
        if line.strip():
            prev_text = line
    return out


def _cells(line: str) -> list[str]:
    """A table row's cells, split at each `|` that is neither escaped nor inside inline code."""
    cells, cell, code, prev = [], "", False, ""
    for ch in line.strip().removeprefix("|"):
        if ch == "`":
            code = not code
        if ch == "|" and not code and prev != "\\":
            cells.append(cell.strip())
            cell = ""
        else:
            cell += ch
        prev = ch
    if cell.strip():
        cells.append(cell.strip())
    return cells


def _clean(text: str) -> str:
    for pattern in IGNORED:
        text = pattern.sub(lambda m: " " * len(m.group(0)), text)
    return text


def _is_separator(line: str) -> bool:
    return bool(re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", line)) and "-" in line


def sections(text: str) -> list[Section]:
    lines = text.splitlines()
    heads = [
        (i + 1, len(m.group(1)), m.group(2))
        for i, s in enumerate(lines)
        if (m := re.match(r"(#+)\s+(.*)", s))
    ]
    if not heads or heads[0][0] != 1:
        heads.insert(0, (1, 1, ""))
    out = []
    for k, (start, level, heading) in enumerate(heads):
        end = heads[k + 1][0] - 1 if k + 1 < len(heads) else len(lines)
        quotes = "\n".join(s for s in lines[start - 1 : end] if s.startswith(">")).lower()
        out.append(Section(heading, level, start, end, any(m in quotes for m in MARKERS)))
    return out


def numbers(record: str, text: str, printouts: bool = False) -> list[Number]:
    """Every figure-bearing number of a record, in order. With `printouts`, the record's fenced blocks
    are a program's printed tables, not code: each number in them is a figure, its `col` the index of
    its whitespace-separated token on the line."""
    secs = sections(text)
    section_of = {}
    for k, s in enumerate(secs):
        for i in range(s.start, s.end + 1):
            section_of[i] = k
    out: list[Number] = []
    table, row, in_table = -1, 0, False
    for i, line, code in _lines(text):
        if code == "fenced" and printouts and not line.lstrip().startswith("```"):
            for k, token in enumerate(line.split()):
                for m in NUMBER.finditer(_clean(token)):
                    out.append(_number(record, i, m, section_of[i], None, None, k))
            continue
        if code or line.lstrip().startswith("#"):
            in_table = False
            continue
        if line.lstrip().startswith("|"):
            if not in_table:  # a table's header: its numbers name columns
                in_table, table, row = True, table + 1, -1
                continue
            if _is_separator(line):
                continue
            row += 1
            for c, cell in enumerate(_cells(line)):
                for m in NUMBER.finditer(_clean(cell)):
                    out.append(_number(record, i, m, section_of[i], table, row, c))
            continue
        in_table = False
        cleaned = _clean(line)
        found = list(NUMBER.finditer(cleaned))
        figure = [_is_figure(m, cleaned) for m in found]
        for k, m in enumerate(found):
            # the first end of a range takes the unit of the second: "76–81 %", "0.87…1.11"
            in_range = (
                k + 1 < len(found)
                and figure[k + 1]
                and re.fullmatch(r"\s?[–…]\s?[-−+]?", cleaned[m.end() : found[k + 1].start()])
            )
            if figure[k] or in_range:
                out.append(_number(record, i, m, section_of[i], None, None, None))
    return out


def _is_figure(m: re.Match, line: str) -> bool:
    num = m.group("num")
    return bool("." in num or m.group("suffix") or "e" in num or UNIT.match(line, m.end()))


def _number(record, line, m, section, table, row, col) -> Number:
    text = m.group(0).strip()
    return Number(record, line, text, m.group("num"), section, table, row, col)


def tables(text: str) -> list[list[list[str]]]:
    """The record's markdown tables, in order (the same indices as `Number.table`): body rows of cells,
    the header row first."""
    out: list[list[list[str]]] = []
    in_table = False
    for _, line, code in _lines(text):
        if not code and line.lstrip().startswith("|"):
            if not in_table:
                out.append([])
                in_table = True
            if not _is_separator(line):
                out[-1].append(_cells(line))
        else:
            in_table = False
    return out


def half_unit(num: str) -> float:
    """Half a unit of the last digit written: the rounding a written figure carries."""
    mantissa, _, exp = num.replace(",", "").lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return 0.5 * 10.0 ** (int(exp or 0) - decimals)


def cell_numbers(cell: str) -> list[tuple[float, str]]:
    """(value, digits as written) of each number in a table cell or a line of a printout."""
    out = []
    for m in NUMBER.finditer(_clean(cell)):
        v = float(m.group("num").replace(",", ""))
        out.append((-v if m.group("sign") in ("-", "−") else v, m.group("num")))
    return out


Expected = str | float | int | tuple | None


def compare_cell(written: str, expected: Expected) -> str | None:
    """None when the written cell holds what was recomputed, within the rounding of both; else why not.
    `expected` is text (rendered like the record: its numbers carry their own rounding), a number or a
    tuple of numbers (exact: only the written rounding counts), or None (not checked)."""
    if expected is None:
        return None
    got = cell_numbers(written)
    if isinstance(expected, str):
        want = [(v, half_unit(d)) for v, d in cell_numbers(expected)]
        if not want and not got:
            return None if written.strip() == expected.strip() else f"{written!r} ≠ {expected!r}"
    else:
        values = expected if isinstance(expected, tuple) else (expected,)
        want = [(float(v), 0.0) for v in values]
    if len(got) != len(want):
        return f"{written!r}: {len(got)} numbers written, {len(want)} recomputed ({expected!r})"
    for (w, digits), (e, e_half) in zip(got, want, strict=True):
        if not (abs(w - e) <= half_unit(digits) + e_half + 1e-9 * max(1.0, abs(e))):
            return f"{written!r}: recomputed {expected!r}"
    return None
