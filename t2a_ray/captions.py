"""Caption files as the field publishes them, read into (prompt id, caption) pairs.

A CSV's layout is recognised by its header (`LAYOUTS`, first match); any other CSV names its columns
with `id_col:` and `caption_col:` (default `id` and `caption`). Each layout says which column is the id
and which the caption(s):

* a layout with one caption per row (AudioCaps, MusicCaps, Song Describer) takes the row's id;
* Clotho has five captions per audio file: each is a prompt of its own, id ``FILE#N`` (N = 1…5), or only
  the one named by `caption_col:` (same id, so runs of one caption and of all five line up).

Published ids are not all valid prompt ids (Clotho's file names hold spaces, MusicCaps' YouTube ids may
start with '-'): such an id is written as a valid one plus a short hash of the original (`published_id`),
the same on every machine and distinct for distinct originals. The ids of a user's own CSV are checked
as written: a bad one is an error naming its row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from t2a_ray.errors import ConfigError

PROMPT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._#-]{0,99}$")
CLOTHO_CAPTIONS = tuple(f"caption_{n}" for n in range(1, 6))


@dataclass(frozen=True)
class Layout:
    """A published caption file: the columns that recognise it, its id column and caption column(s)."""

    name: str
    header: tuple[str, ...]  # every one of these columns is in the file's header
    id_col: str
    caption_cols: tuple[str, ...]  # several: one prompt per column, id ID#N


LAYOUTS = (
    Layout("AudioCaps", ("audiocap_id", "youtube_id", "start_time", "caption"), "audiocap_id", ("caption",)),
    Layout("Clotho", ("file_name", *CLOTHO_CAPTIONS), "file_name", CLOTHO_CAPTIONS),
    Layout(
        "MusicCaps",
        ("ytid", "start_s", "end_s", "aspect_list", "caption"),
        "ytid",
        ("caption",),
    ),
    Layout("Song Describer", ("caption_id", "track_id", "caption"), "caption_id", ("caption",)),
)
GENERIC = Layout("CSV", ("id", "caption"), "id", ("caption",))


def layout_of(header: list[str]) -> Layout | None:
    """The published layout whose columns the header holds, or None."""
    return next((lay for lay in LAYOUTS if set(lay.header) <= set(header)), None)


def read_captions(
    text: str,
    key: str,
    value: str,
    id_col: str | None,
    caption_col: str | None,
    check_id: Callable[[str, object], str],
) -> list[tuple[str, str, str]]:
    """(prompt id, caption, where) for each caption of the CSV `text`; `where` names its row for errors.

    `key`/`value` are the sweep's key and file name (for error messages); `check_id` validates an id
    a user wrote themselves.
    """
    try:
        reader = csv.DictReader(io.StringIO(text))
        header = [h for h in (reader.fieldnames or []) if h is not None]
        rows = list(reader)
    except csv.Error as e:
        raise ConfigError(key, value, f"is not valid CSV ({e})") from None
    layout = layout_of(header)
    if not rows:
        raise ConfigError(key, value, "holds no rows (columns: id, caption)")
    published = layout is not None and id_col is None
    layout = layout or GENERIC
    ids = id_col or layout.id_col
    if caption_col is not None:
        captions: tuple[str, ...] = (caption_col,)
    else:
        captions = layout.caption_cols
    missing = [c for c in (ids, *captions) if c not in header]
    if missing:
        has = ", ".join(h for h in header if h)
        if id_col is None and caption_col is None:
            raise ConfigError(
                key,
                value,
                f"must have columns id and caption, or a published layout "
                f"({', '.join(lay.name for lay in LAYOUTS)}), or name them with id_col: and caption_col: "
                f"(has: {has})",
            )
        raise ConfigError(
            f"{key[: -len('file')]}{'id_col' if ids in missing else 'caption_col'}",
            missing[0],
            f"no such column in {value} (has: {has})",
        )
    numbered = len(layout.caption_cols) > 1  # Clotho: ID#N, whichever captions are read
    out = []
    for i, row in enumerate(rows):
        where = f"{key} row {i + 2}"
        raw = row[ids]
        pid = published_id(raw) if published else check_id(f"{where} {ids}", raw)
        for col in captions:
            suffix = (
                f"#{layout.caption_cols.index(col) + 1}" if numbered and col in layout.caption_cols else ""
            )
            out.append((f"{pid}{suffix}", row[col], f"{where} {col}"))
    return out


def published_id(raw: object) -> str:
    """A published dataset's id as a valid prompt id: itself where valid, else its characters a prompt
    id allows (others as '_') and 8 hex digits of its hash — stable, and distinct for distinct ids."""
    text = "" if raw is None else str(raw)
    if PROMPT_ID_RE.match(text) and "#" not in text:
        return text
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", text).lstrip("._-")[:80]
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{readable}-{digest}" if readable else f"id-{digest}"
