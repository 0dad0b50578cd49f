"""Result files: written whole, read back the same, history and latest-per-model from a folder of them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from evals import results
from evals.results import ResultFileError, Run

START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def run_at(minutes: int, model: str, **figures: float) -> Run:
    return Run(model=model, created=(START + timedelta(minutes=minutes)).isoformat(), source="test",
               settings={"prompts": 1}, figures=figures, machine=results.machine_facts())


def test_a_written_run_reads_back_the_same(tmp_path):
    run = run_at(0, "smollm2-135m-instruct", ttft_ms=120.5, tokens_per_second=48.0, tokens=64)
    saved = results.write(run, tmp_path / "new" / "folder")  # created on first use
    assert saved.file.endswith(".json") and saved.file.startswith("20250601T120000")
    back = results.read(tmp_path / "new" / "folder" / saved.file)
    assert back == saved
    data = json.loads((tmp_path / "new" / "folder" / saved.file).read_text())
    assert data["format"] == results.FORMAT and "file" not in data
    assert data["machine"]["cpu_count"] >= 1 and data["machine"]["python"]
    assert [p.name for p in (tmp_path / "new" / "folder").iterdir()] == [saved.file]  # no partial file left


def test_file_names_keep_model_ids_inside_the_folder(tmp_path):
    for model in ("../../etc/passwd", "org/Model.v2", "..", "ünïcode model"):
        saved = results.write(run_at(0, model, tokens=1), tmp_path)
        assert (tmp_path / saved.file).is_file() and "/" not in saved.file and ".." not in saved.file
    assert len(list(tmp_path.iterdir())) == 4  # two runs of one model at one instant are two files


def test_history_and_latest_per_model(tmp_path):
    for run in (run_at(2, "a", tokens_per_second=20.0, ttft_ms=90.0), run_at(0, "a", tokens_per_second=10.0),
                run_at(1, "b", tokens_per_second=30.0, accuracy=0.5), run_at(3, "b", accuracy=0.75)):
        results.write(run, tmp_path)
    runs = results.list_runs(tmp_path)
    assert [(r.model, r.time.minute) for r in runs] == [("a", 0), ("b", 1), ("a", 2), ("b", 3)]
    assert [(r.model, r.figures["tokens_per_second"]) for r in results.latest(runs, "tokens_per_second")] == \
        [("a", 20.0), ("b", 30.0)]  # b's newest run has no speed figure: its newest one that does
    assert [(r.model, r.figures["accuracy"]) for r in results.latest(runs, "accuracy")] == [("b", 0.75)]
    assert [(t.minute, m, v) for t, m, v in results.history(runs, "tokens_per_second")] == \
        [(0, "a", 10.0), (1, "b", 30.0), (2, "a", 20.0)]


def test_a_missing_folder_has_no_runs_and_bad_files_are_skipped(tmp_path, caplog):
    assert results.list_runs(tmp_path / "nothing here") == []
    results.write(run_at(0, "a", tokens=3), tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"format": 1, "model": "a"}))
    (tmp_path / "notes.txt").write_text("not a result")
    assert [r.model for r in results.list_runs(tmp_path)] == ["a"]
    assert "broken.json" in caplog.text and "other.json" in caplog.text


@pytest.mark.parametrize(("change", "message"), [
    ({"format": 99}, "not a result file of format 1"),
    ({"figures": {"tokens": "many"}}, "figures must be numbers; not: tokens"),
    ({"figures": {"ok": True}}, "figures must be numbers; not: ok"),
    ({"created": "yesterday"}, "'created' is not an ISO 8601 time"),
    ({"settings": None}, "'settings' is missing or not a dict"),
])
def test_reading_says_what_is_wrong_with_a_file(tmp_path, change, message):
    saved = results.write(run_at(0, "a", tokens=3), tmp_path)
    path = tmp_path / saved.file
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    with pytest.raises(ResultFileError, match=message) as raised:
        results.read(path)
    assert saved.file in str(raised.value)
