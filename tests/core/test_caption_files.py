"""The study's caption files read as published (AudioCaps, Clotho, MusicCaps, Song Describer, any CSV
with id_col/caption_col), with unique and stable prompt ids."""

from __future__ import annotations

import csv

import pytest

from t2a_ray.captions import PROMPT_ID_RE, published_id
from t2a_ray.config import MAX_PROMPT_FILE_BYTES, parse_sweep
from t2a_ray.errors import ConfigError

BASE = {"name": "t", "models": ["noop"], "weights": "tiny", "grid": {"steps": 2}}

AUDIOCAPS = [
    ["audiocap_id", "youtube_id", "start_time", "caption"],
    ["103549", "7fmOlUlwoNg", "20", "Constant rattling noise and sharp vibrations"],
    ["103548", "6BJ455B1aAs", "0", "A rocket flies by followed by a loud explosion"],
]
CLOTHO = [
    ["file_name", *(f"caption_{n}" for n in range(1, 6))],
    ["Santa Motor.wav", *(f"a motor hums, take {n}" for n in range(1, 6))],
    ["river, far.wav", *(f"water flows, take {n}" for n in range(1, 6))],
]
MUSICCAPS = [
    [
        "ytid",
        "start_s",
        "end_s",
        "audioset_positive_labels",
        "aspect_list",
        "caption",
        "author_id",
        "is_balanced_subset",
        "is_audioset_eval",
    ],
    [
        "-0Gj8-vB1q4",
        "30",
        "40",
        "/m/0140xf",
        "['low quality']",
        "The low quality recording features a ballad",
        "4",
        "False",
        "True",
    ],
    [
        "-0SdAVK79lg",
        "30",
        "40",
        "/m/0155w",
        "['guitar']",
        "This song features an electric guitar",
        "0",
        "False",
        "False",
    ],
]
SONG_DESCRIBER = [
    [
        "caption_id",
        "track_id",
        "caption",
        "is_valid_subset",
        "familiarity",
        "artist_id",
        "album_id",
        "path",
        "duration",
    ],
    ["0", "1131", "A calm piano piece", "True", "0", "14", "21", "00/1131.2min.mp3", "120.0"],
    ["1", "1131", "Gentle piano with reverb", "False", "1", "14", "21", "00/1131.2min.mp3", "120.0"],
]


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def prompts(tmp_path, rows, **spec):
    write_csv(tmp_path / "captions.csv", rows)
    sweep = parse_sweep({**BASE, "prompts": {"file": "captions.csv", **spec}}, tmp_path)
    return [(p.id, p.text) for p in sweep.prompts]


def test_audiocaps_is_read_by_its_header(tmp_path):
    assert prompts(tmp_path, AUDIOCAPS) == [(r[0], r[3]) for r in AUDIOCAPS[1:]]


def test_clotho_gives_each_of_its_five_captions_as_a_prompt(tmp_path):
    got = prompts(tmp_path, CLOTHO)
    assert len(got) == 10 and len({i for i, _ in got}) == 10
    motor = published_id("Santa Motor.wav")
    assert got[:2] == [(f"{motor}#1", "a motor hums, take 1"), (f"{motor}#2", "a motor hums, take 2")]
    assert all(PROMPT_ID_RE.match(i) for i, _ in got)


def test_clotho_with_caption_col_reads_one_caption_under_the_same_id(tmp_path):
    every = dict(prompts(tmp_path, CLOTHO))
    one = prompts(tmp_path, CLOTHO, caption_col="caption_3")
    assert len(one) == 2 and all(every[i] == text for i, text in one)
    assert one[0] == (f"{published_id('Santa Motor.wav')}#3", "a motor hums, take 3")


def test_musiccaps_and_song_describer_are_read_by_their_headers(tmp_path):
    music = prompts(tmp_path, MUSICCAPS)
    assert [t for _, t in music] == [r[5] for r in MUSICCAPS[1:]]
    assert [i for i, _ in music] == [published_id(r[0]) for r in MUSICCAPS[1:]]
    assert music[0][0].startswith("0Gj8-vB1q4-")  # a YouTube id that starts with '-': made valid, hashed
    assert prompts(tmp_path, SONG_DESCRIBER) == [(r[0], r[2]) for r in SONG_DESCRIBER[1:]]


def test_published_ids_are_stable_valid_and_distinct():
    originals = ["Santa Motor.wav", "Santa_Motor.wav", "Santa Motor .wav", "-0Gj8-vB1q4", "x#1", "é", ""]
    ids = [published_id(o) for o in originals]
    assert ids == [published_id(o) for o in originals]  # the same on every call (and machine: sha256)
    assert len(set(ids)) == len(ids) and all(PROMPT_ID_RE.match(i) for i in ids)
    assert published_id("Santa_Motor.wav") == "Santa_Motor.wav"  # a valid id stays itself


def test_any_csv_names_its_columns(tmp_path):
    rows = [["key", "text", "other"], ["a1", "a dog barks", "x"], ["a2", "rain", "y"]]
    assert prompts(tmp_path, rows, id_col="key", caption_col="text") == [
        ("a1", "a dog barks"),
        ("a2", "rain"),
    ]
    with pytest.raises(ConfigError) as info:
        prompts(tmp_path, rows, id_col="key", caption_col="txt")
    assert info.value.key_path == "prompts.caption_col" and "no such column" in str(info.value)
    # a user's own ids are checked as written (a published layout's are made valid)
    with pytest.raises(ConfigError, match="prompts.file row 2 text"):
        prompts(tmp_path, [["key", "text"], ["a1", " "]], id_col="key", caption_col="text")
    with pytest.raises(ConfigError, match="prompts.file row 2 key"):
        prompts(tmp_path, [["key", "text"], ["a b", "rain"]], id_col="key", caption_col="text")


def test_an_unknown_layout_says_what_is_read(tmp_path):
    with pytest.raises(ConfigError) as info:
        prompts(tmp_path, [["name", "description"], ["a", "b"]])
    message = str(info.value)
    assert "must have columns id and caption" in message
    assert "AudioCaps, Clotho, MusicCaps, Song Describer" in message and "id_col" in message
    assert "(has: name, description)" in message


def test_id_col_and_caption_col_need_a_file(tmp_path):
    with pytest.raises(ConfigError, match="prompts.id_col = 'x': must be a column name of the CSV"):
        parse_sweep({**BASE, "prompts": {"text": ["a"], "id_col": "x"}}, tmp_path)


def test_ids_that_name_one_audio_file_are_refused(tmp_path):
    rows = [["id", "caption"], ["a#1", "a dog"], ["a_1", "rain"]]
    with pytest.raises(ConfigError, match="unique as file names"):
        prompts(tmp_path, rows)


def test_a_prompts_file_above_the_limit_is_refused_with_its_size(tmp_path):
    path = tmp_path / "captions.csv"
    with open(path, "wb") as f:
        f.write(b"id,caption\n")
        f.truncate(MAX_PROMPT_FILE_BYTES + 1)
    with pytest.raises(ConfigError) as info:
        parse_sweep({**BASE, "prompts": {"file": "captions.csv"}}, tmp_path)
    assert info.value.key_path == "prompts.file"
    assert "is 8.0 MiB; a prompts file may hold 8 MiB at most" in str(info.value)
