"""The results schema and the shard store."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from t2a_ray.runfolder import RunFolder
from t2a_ray.schema import (
    ShardError,
    check_footer,
    check_shards,
    conform_quality,
    merge_results,
    quality_schema,
    read_checked,
    results_schema,
    rows_to_table,
    shard_metadata,
    write_table,
)

AXES = {"steps": int, "guidance_scale": float, "duration_s": float, "batch_size": int}
PRODUCT_COLUMNS = """run trial_id repeat prompt_id model model_revision weights dtype steps guidance_scale duration_s
batch_size seed node gpu_index gpu_name gpu_uuid gpu_energy_j gpu_energy_net_j idle_power_w cpu_energy_j
dram_energy_j energy_method window_s generations_in_window latency_s energy_per_waveform_j energy_per_audio_s_j
avg_power_w peak_memory_bytes temperature_start_c temperature_end_c carbon_g text_encoder_energy_j
denoise_energy_j decode_energy_j vocoder_energy_j status error""".split()


def test_schema_has_every_product_column():
    names = results_schema(AXES).names
    assert set(PRODUCT_COLUMNS) <= set(names)
    assert len(names) == len(set(names))


def row(tid, repeat, **kw):
    return {
        "run": "r",
        "trial_id": tid,
        "repeat": repeat,
        "prompt_id": "p0",
        "model": "noop",
        "steps": 10,
        "status": "ok",
        **kw,
    }


def test_missing_values_stay_null_and_unknown_columns_are_refused():
    table = rows_to_table([row("a", 0)], results_schema(AXES))
    assert table.column("gpu_energy_j").to_pylist() == [None]
    with pytest.raises(ValueError, match="bogus"):
        rows_to_table([row("a", 0, bogus=1)], results_schema(AXES))


def test_merge_sorts_rows_and_quarantines_a_corrupt_shard(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.trials_dir.mkdir(parents=True)
    schema = results_schema(AXES)
    write_table(rows_to_table([row("b", 1), row("b", 0)], schema), run.shard("b"), metadata={"wall_s": 1.5})
    write_table(rows_to_table([row("a", 0, gpu_energy_j=3.0)], schema), run.shard("a"))
    good = run.shard("a").read_bytes()
    run.shard("c").write_bytes(good[: len(good) // 2])  # truncated mid-write by something else
    table, bad = merge_results(run)
    assert [(r["trial_id"], r["repeat"]) for r in table.to_pylist()] == [("a", 0), ("b", 0), ("b", 1)]
    assert [p.name for p in bad] == ["c.parquet"] and not run.shard("c").exists()
    assert pq.read_table(run.results).num_rows == 3
    footer = pq.ParquetFile(run.shard("b")).schema_arrow  # as `status` reads it
    assert shard_metadata(footer) == {"wall_s": 1.5}


class CountingRunFolder(RunFolder):
    """The real run folder, counting how often the trials folder is listed for finished trials."""

    listings = 0

    def finished_trial_ids(self):
        CountingRunFolder.listings += 1
        return super().finished_trial_ids()


def test_quality_shards_merge_typed_listing_the_folder_once(tmp_path):
    run = CountingRunFolder(tmp_path / "r")
    run.trials_dir.mkdir(parents=True)
    schema = results_schema(AXES)
    for tid in ("a", "b", "c", "d"):
        write_table(rows_to_table([row(tid, 0)], schema), run.shard(tid))
        write_table(
            rows_to_table([{"trial_id": tid, "fad_inf_sizes": [2, 3]}], quality_schema()),
            run.quality_shard(tid),
        )
    # a shard written before the schema existed: inferred types, fewer columns — it still merges, typed
    write_table(
        pa.Table.from_pylist([{"trial_id": "a", "n_generations": 4, "clap_mean": 0.25}]),
        run.quality_shard("a"),
    )
    write_table(pa.Table.from_pylist([{"trial_id": "z"}]), run.quality_shard("z"))  # its trial never finished
    CountingRunFolder.listings = 0
    merge_results(run)
    assert CountingRunFolder.listings == 2  # results shards once, quality shards once: not once per file
    merged = pq.read_table(run.quality)
    assert merged.schema.equals(quality_schema(), check_metadata=False)
    assert merged.column("trial_id").to_pylist() == ["a", "b", "c", "d"]
    assert merged.column("clap_mean").to_pylist() == [0.25, None, None, None]
    assert merged.column("fad_inf_sizes").to_pylist() == [None, [2, 3], [2, 3], [2, 3]]


def test_quality_rows_with_unknown_columns_are_refused():
    with pytest.raises(ValueError, match="clap_score"):
        rows_to_table([{"trial_id": "a", "clap_score": 0.3}], quality_schema())
    with pytest.raises(ValueError, match="clap_score"):
        conform_quality(pa.Table.from_pylist([{"trial_id": "a", "clap_score": 0.3}]))


def test_a_shard_whose_content_does_not_match_its_footer_checksum_is_moved_aside(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.trials_dir.mkdir(parents=True)
    schema = results_schema(AXES)
    write_table(rows_to_table([row("a", 0, gpu_energy_j=3.0)], schema), run.shard("a"))
    # "b": a valid Parquet file whose footer carries the checksum of other content (a silent bit flip)
    honest = pq.read_table(run.shard("a"))
    forged = rows_to_table([row("b", 0, gpu_energy_j=4.0)], schema).replace_schema_metadata(
        honest.schema.metadata
    )
    pq.write_table(forged, run.shard("b"))
    assert check_footer(run.shard("b")) == check_footer(run.shard("a"))  # its footer alone looks whole
    with pytest.raises(ShardError, match="checksum"):
        read_checked(run.shard("b"))
    table, bad = merge_results(run)
    assert table.column("trial_id").to_pylist() == ["a"] and [p.name for p in bad] == ["b.parquet"]


def test_the_footer_check_finds_a_cut_shard_and_a_miscount_without_reading_the_data(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.trials_dir.mkdir(parents=True)
    schema = results_schema(AXES)
    for tid in ("a", "b", "c"):
        write_table(rows_to_table([row(tid, 0), row(tid, 1)], schema), run.shard(tid))
    whole = run.shard("b").read_bytes()
    run.shard("b").write_bytes(whole[:-10])  # cut short: no footer
    two_rows = pq.read_table(run.shard("a")).schema.metadata
    pq.write_table(rows_to_table([row("c", 0)], schema).replace_schema_metadata(two_rows), run.shard("c"))
    sums, bad = check_shards(run)
    assert set(sums) == {"a"} and sorted(p.name for p in bad) == ["b.parquet", "c.parquet"]
    assert run.finished_trial_ids() == {"a"}


def test_merging_a_finished_run_again_reads_the_merged_file_not_the_shards(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.trials_dir.mkdir(parents=True)
    schema = results_schema(AXES)
    write_table(rows_to_table([row("a", 0)], schema), run.shard("a"))
    first, _ = merge_results(run)
    stamp = run.results.stat().st_mtime_ns
    again, _ = merge_results(run)
    assert again.equals(first) and run.results.stat().st_mtime_ns == stamp  # not rewritten
    write_table(rows_to_table([row("b", 0)], schema), run.shard("b"))  # a new shard: merged again
    third, _ = merge_results(run)
    assert third.column("trial_id").to_pylist() == ["a", "b"]
