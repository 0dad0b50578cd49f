"""The Benchmarks tab, driven by gradio_client and by a person in headless Chromium, on a real server that
writes its result files into a folder of the test's own (and spends its callers' token budgets); and its
handler in-process, where a results folder can be made unwritable."""

from __future__ import annotations

import asyncio
import dataclasses
import os

import gradio as gr
import httpx
import pytest
from gradio_client import Client

from engines.catalog import find
from engines.local import LocalEngine
from engines.model_files import resolve_path
from engines.registry import ModelRegistry
from evals import results
from playground.benchmarks_tab import BenchmarksTab
from tests.support import browser
from tests.support.servers import CHAT_MODEL, start_server, stop_server

KEY, THRIFTY_KEY = "bench-key", "thrifty-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
BUDGET = 1000  # tokens per minute per key: several small runs fit, a 1100-token prompt does not
SMALL = dict(suites=["speed", "quality"], prompts=1, max_tokens=8, questions=1)  # seconds, not minutes

@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    srv = start_server(folder, "--model", CHAT_MODEL, "--results-dir", str(folder / "results"),
                       "--api-key", f"{KEY},{THRIFTY_KEY}", "--token-budget", str(BUDGET))
    srv.results = folder / "results"
    yield srv
    stop_server(srv)


def saved_files(bench) -> set[str]:
    return {p.name for p in bench.results.glob("*.json")} if bench.results.exists() else set()


def run_benchmark(client: Client, models, suites, prompts, max_tokens, questions):
    return client.predict(models, suites, prompts, max_tokens, questions, api_name="/run_benchmark")


@pytest.mark.slow
def test_run_benchmark_saves_a_result_file_and_returns_its_figures(bench):
    client = Client(bench.url + "/", verbose=False, headers=AUTH)
    before = saved_files(bench)
    (run,) = run_benchmark(client, [CHAT_MODEL], *SMALL.values())
    assert saved_files(bench) - before == {run["file"]}
    assert run["model"] == CHAT_MODEL and run["settings"] == SMALL
    figures = run["figures"]
    assert figures["tokens"] == 8 and figures["ttft_ms"] > 0 and figures["tokens_per_second"] > 0
    assert figures["questions"] == 1 and figures["accuracy"] == figures["correct"] in (0, 1)
    on_disk = results.read(bench.results / run["file"])
    assert on_disk.figures == figures and on_disk.source == "playground"
    assert on_disk.machine["cpu_count"] == os.cpu_count()  # the server's machine is this one
    assert [s["suite"] for s in on_disk.samples] == ["speed", "quality"]
    assert run["file"] in [r["file"] for r in client.predict(api_name="/benchmark_runs")]


@pytest.mark.slow
@pytest.mark.parametrize(("models", "options", "message"), [
    ([], {}, "Choose at least one model"),
    (["no-such-model"], {}, "does not exist"),
    ([f"m{i}" for i in range(7)], {}, "at most 6 models"),
    ([CHAT_MODEL], {"suites": []}, "suites: List should have at least 1 item"),
    ([CHAT_MODEL], {"suites": ["vibes"]}, "suites: Input should be 'speed' or 'quality'"),
    ([CHAT_MODEL], {"prompts": 0}, "prompts: Input should be greater than or equal to 1"),
    ([CHAT_MODEL], {"max_tokens": 4096}, "max_tokens: Input should be less than or equal to 256"),
    ([CHAT_MODEL], {"questions": 999}, "questions: there are 16 questions"),
])
def test_bad_input_is_refused_before_any_work(bench, models, options, message):
    client = Client(bench.url + "/", verbose=False, headers=AUTH)
    before = saved_files(bench)
    with pytest.raises(Exception, match=message):
        run_benchmark(client, models, *{**SMALL, **options}.values())
    assert saved_files(bench) == before


@pytest.mark.slow
def test_a_benchmark_spends_the_callers_token_budget(bench):
    thrifty = {"Authorization": f"Bearer {THRIFTY_KEY}"}
    long = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "word " * 1100}], "max_tokens": 1}
    assert httpx.post(bench.v1 + "/chat/completions", json=long, headers=thrifty, timeout=120).status_code == 200
    before = saved_files(bench)
    with pytest.raises(Exception, match="Token budget reached"):
        run_benchmark(Client(bench.url + "/", verbose=False, headers=thrifty), [CHAT_MODEL], *SMALL.values())
    assert saved_files(bench) == before


def set_slider(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


ROWS = """() => [...document.querySelectorAll('#benchmark-runs [role=row].virtual-row')]
                  .filter(row => row.innerText.includes('.json')).length"""  # the table's rows of runs


def run_from_the_tab(page) -> None:
    before = page.evaluate(ROWS)
    page.locator("#benchmark-run").click()
    page.wait_for_function(f"({ROWS})() > {before}", timeout=180_000)


@pytest.mark.browser
def test_a_run_from_the_tab_draws_the_charts_and_two_runs_draw_a_history_line(bench):
    with browser.launch() as chromium:
        context = chromium.new_context(extra_http_headers=AUTH, viewport={"width": 1280, "height": 1500})
        page = context.new_page()
        page.goto(bench.url + "/", wait_until="load")
        page.get_by_role("tab", name="Benchmarks").click(timeout=60_000)
        for elem_id, value in (("benchmark-prompts", 1), ("benchmark-max-tokens", 8), ("benchmark-questions", 1)):
            set_slider(page, elem_id, value)
        runs_before = len(results.list_runs(bench.results))

        run_from_the_tab(page)
        assert page.locator("#benchmark-status").inner_text().startswith("Saved 1 run")
        # Vega draws the bar charts as SVG: a bar per model, labelled with the model, as tall as its value.
        for chart in ("benchmark-speed", "benchmark-ttft", "benchmark-accuracy"):
            bar = page.locator(f"#{chart} svg .mark-rect path").first
            bar.wait_for(timeout=30_000)
            assert CHAT_MODEL in (bar.get_attribute("aria-label") or "") and bar.bounding_box()["height"] > 0
            y_axis = page.locator(f"#{chart} svg [aria-label^='Y-axis']").get_attribute("aria-label")
            assert "linear scale" in y_axis  # values on a numeric axis, not as categories
        run_from_the_tab(page)
        runs = results.list_runs(bench.results)
        assert len(runs) == runs_before + 2 and {r.source for r in runs[-2:]} == {"playground"}
        # The history: one line per model through all its runs (a line needs two of them).
        line = page.locator("#benchmark-history svg .mark-line path").first
        line.wait_for(timeout=30_000)
        assert (line.get_attribute("d") or "").count("L") >= len(runs) - 1
        page.locator("#benchmark-history").scroll_into_view_if_needed()
        page.screenshot(path="/tmp/benchmarks_tab.png", full_page=True)
        context.close()


def test_a_results_folder_that_cannot_be_written_is_an_error_without_its_path(tmp_path):
    spec = dataclasses.replace(find(CHAT_MODEL), max_concurrent=1, n_threads=2)
    registry = ModelRegistry()
    registry.add(spec, LocalEngine(spec, resolve_path(spec), max_queue=1, queue_timeout=60))
    blocked = tmp_path / "a file, not a folder"
    blocked.write_text("")
    tab = BenchmarksTab(registry, blocked / "results")
    with pytest.raises(gr.Error, match="could not save the result file") as raised:
        asyncio.run(tab.run_benchmark([CHAT_MODEL], ["speed"], 1, 8, 1))
    assert str(tmp_path) not in str(raised.value)
    asyncio.run(registry.aclose())
