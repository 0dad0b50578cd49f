"""The Benchmarks tab: run speed and quality benchmarks on chosen models, see them compared and over time.

The runs are `evals/` (the same runner `python -m benchmarks.models` uses), through the engine contract
as the Chat tab calls it; each model's run is saved as one JSON file in `--results-dir`, and the charts
read that folder, so runs from scripts and from other pages show up too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from engines.errors import EngineError
from engines.registry import ModelRegistry
from evals import quality, results, speed
from evals.suite import SUITES, check, run_model
from playground.caller import as_caller

log = logging.getLogger(__name__)

MAX_MODELS = 6  # per run: each one is measured in turn, and a run holds the benchmark queue
SOURCE = "playground"
# figure in the result files (the plots' columns: Vega reads '/' and '.' in a field name as a path) -> its title
METRICS = {"tokens_per_second": "tokens/s", "ttft_ms": "TTFT (ms)", "accuracy": "accuracy"}
RUN_HEADERS = ["time (UTC)", "model", "TTFT (ms)", "tokens/s", "tokens", "accuracy", "questions", "CPUs", "source",
               "file"]


def bar_frame(runs: list[results.Run], figure: str) -> pd.DataFrame:
    """Each model's latest value of `figure`. Typed even when empty: the plot takes its axis types from
    the first value it gets (an untyped empty column would make a category axis of the values)."""
    return pd.DataFrame([(run.model, run.figures[figure]) for run in results.latest(runs, figure)],
                        columns=["model", figure]).astype({"model": str, figure: float})


def history_frame(runs: list[results.Run], figure: str) -> pd.DataFrame:
    rows = [(time.replace(tzinfo=None), model, value) for time, model, value in results.history(runs, figure)]
    return pd.DataFrame(rows, columns=["time", "model", figure]).astype(
        {"time": "datetime64[ms]", "model": str, figure: float})


def run_rows(runs: list[results.Run]) -> list[list[Any]]:
    """Newest first."""
    return [[run.time.strftime("%Y-%m-%d %H:%M:%S"), run.model, run.figures.get("ttft_ms"),
             run.figures.get("tokens_per_second"), run.figures.get("tokens"), run.figures.get("accuracy"),
             run.figures.get("questions"), run.machine.get("cpu_count"), run.source, run.file]
            for run in reversed(runs)]


def summary(run: results.Run) -> dict[str, Any]:
    """What a caller gets back for one run: no paths, only the file's name in the results folder."""
    return {"model": run.model, "created": run.created, "file": run.file, "figures": run.figures,
            "settings": run.settings}


class BenchmarksTab:
    def __init__(self, registry: ModelRegistry, results_dir: str | Path):
        self.registry = registry
        self.results_dir = Path(results_dir)

    def _models(self, models: Any) -> list[str]:
        if isinstance(models, str):
            models = [models]
        if not isinstance(models, list | tuple) or not models:
            raise gr.Error("Choose at least one model to benchmark.")
        if not all(isinstance(m, str) and m.strip() for m in models):
            raise gr.Error("models: give model ids as text.")
        models = list(dict.fromkeys(m.strip() for m in models))
        if len(models) > MAX_MODELS:
            raise gr.Error(f"Choose at most {MAX_MODELS} models per run ({len(models)} chosen).")
        for model in models:
            try:
                self.registry.require(model)
            except EngineError as exc:
                raise gr.Error(exc.message) from None
        return models

    def _chat(self, model: str) -> bool:
        return model in self.registry.personas or self.registry.entry(model).spec.chat

    async def _run(self, models: Any, suites: Any, prompts: Any, max_tokens: Any, questions: Any,
                   progress: gr.Progress | None = None) -> list[results.Run]:
        """Checks everything before any work, then measures the models one after another (in parallel
        they would slow each other down) and writes one file per model."""
        models = self._models(models)
        try:
            options = check(suites=suites if suites is not None else [], prompts=prompts, max_tokens=max_tokens,
                            questions=questions)
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        per_model = (options.prompts if "speed" in options.suites else 0) + \
            (options.questions if "quality" in options.suites else 0)
        done, saved = 0, []
        for model in models:
            def step(what: str, model: str = model) -> None:
                nonlocal done
                if progress is not None:
                    progress(done / (per_model * len(models)), desc=f"{model}: {what}")
                done += 1

            try:
                run = await run_model(self.registry.get(model), model, chat=self._chat(model), options=options,
                                      source=SOURCE, step=step)
            except (EngineError, RuntimeError) as exc:  # RuntimeError: a stream that ended without tokens
                why = exc.message if isinstance(exc, EngineError) else str(exc)
                raise gr.Error(f"{model}: {why}" + (f" (saved: {', '.join(r.model for r in saved)})"
                                                    if saved else "")) from None
            try:
                saved.append(results.write(run, self.results_dir))
            except OSError:
                log.exception("cannot write a result file into %s", self.results_dir)
                raise gr.Error("The server could not save the result file; its log says why.") from None  # no paths
        return saved

    async def run_benchmark(self, models: list[str], suites: list[str] | None = None, prompts: int = 2,
                            max_tokens: int = 32, questions: int = 4) -> list[dict[str, Any]]:
        """Benchmarks each model (speed: TTFT and tokens/s over `prompts` fixed prompts of `max_tokens`
        tokens; quality: accuracy on the first `questions` multiple-choice questions), saves one result
        file per model and returns, per model: model, created, file, figures, settings."""
        runs = await self._run(models, list(SUITES) if suites is None else suites, prompts, max_tokens, questions)
        return [summary(run) for run in runs]

    async def run_and_show(self, models, suites, prompts, max_tokens, questions, metric,
                           progress=gr.Progress()):  # noqa: B008 (Gradio's way of asking for a progress bar)
        runs = await self._run(models, suites, prompts, max_tokens, questions, progress)
        said = "; ".join(f"**{run.model}**: " + ", ".join(f"{METRICS.get(k, k)} {v:g}" for k, v in run.figures.items()
                                                         if k in METRICS) for run in runs)
        return (f"Saved {len(runs)} run{'s' * (len(runs) != 1)}. {said}", *self.views(metric))

    def views(self, metric: str) -> tuple:
        """Charts and table as the results folder holds them now (page load, a finished run, a new metric)."""
        figure = next((key for key, title in METRICS.items() if title == metric), "tokens_per_second")
        runs = results.list_runs(self.results_dir)
        return (bar_frame(runs, "tokens_per_second"), bar_frame(runs, "ttft_ms"), bar_frame(runs, "accuracy"),
                gr.LinePlot(history_frame(runs, figure), y=figure, y_title=METRICS[figure]), run_rows(runs))

    def runs(self) -> list[dict[str, Any]]:
        """Every saved run, oldest first: model, created, file, figures, settings."""
        return [summary(run) for run in results.list_runs(self.results_dir)]

    def build(self, model_ids: list[str], default_model: str | None) -> gr.Dropdown:
        """Lays out the tab; returns the model picker (the page refreshes its choices at every load)."""
        have_questions = quality.available()
        gr.Markdown("Measure models here: **speed** (time to first token and tokens/s over fixed prompts, as a "
                    "caller sees them) and **quality** (multiple-choice accuracy, the answer constrained to the "
                    "choices). Each model's run is saved as a JSON file; the charts show the latest run per model "
                    "and every run over time.")
        with gr.Row():
            models = gr.Dropdown(model_ids, value=[default_model] if default_model else [], multiselect=True,
                                 label="Models", scale=3, elem_id="benchmark-models")
            suites = gr.CheckboxGroup(list(SUITES) if have_questions else ["speed"], label="Suites", scale=2,
                                      value=list(SUITES) if have_questions else ["speed"], elem_id="benchmark-suites")
        with gr.Row():
            prompts = gr.Slider(1, len(speed.PROMPTS), value=2, step=1, label="Prompts (speed)",
                                elem_id="benchmark-prompts")
            max_tokens = gr.Slider(8, 256, value=32, step=8, label="Tokens per prompt (speed)",
                                   elem_id="benchmark-max-tokens")
            questions = gr.Slider(1, max(have_questions, 1), value=min(4, max(have_questions, 1)), step=1,
                                  label="Questions (quality)", interactive=bool(have_questions),
                                  elem_id="benchmark-questions")
        start = gr.Button("Run benchmark", variant="primary", elem_id="benchmark-run")
        status = gr.Markdown(elem_id="benchmark-status")
        with gr.Row():
            speed_bars, ttft_bars, accuracy_bars = (
                gr.BarPlot(x="model", y=figure, y_title=METRICS[figure], title=f"{title} — latest run per model",
                           y_lim=limits, elem_id=f"benchmark-{name}")
                for figure, title, limits, name in (("tokens_per_second", "Tokens/s", [0, None], "speed"),
                                                    ("ttft_ms", "Time to first token (ms)", [0, None], "ttft"),
                                                    ("accuracy", "Accuracy", [0, 1], "accuracy")))
        metric = gr.Radio(list(METRICS.values()), value="tokens/s", label="History of", elem_id="benchmark-metric")
        history = gr.LinePlot(x="time", y="tokens_per_second", y_title="tokens/s", color="model",
                              title="Every run, by model", elem_id="benchmark-history")
        runs = gr.Dataframe(headers=RUN_HEADERS, interactive=False, label="Runs (newest first)",
                            elem_id="benchmark-runs")
        views = [speed_bars, ttft_bars, accuracy_bars, history, runs]

        # One benchmark at a time, from the UI and the API alike: two at once would measure each other.
        queue = dict(concurrency_limit=1, concurrency_id="benchmark")
        start.click(as_caller(self.run_and_show), [models, suites, prompts, max_tokens, questions, metric],
                    [status, *views], api_name="benchmark", **queue)
        gr.api(as_caller(self.run_benchmark), api_name="run_benchmark", **queue)
        gr.api(self.runs, api_name="benchmark_runs")
        # No trigger named: at every page load (files written since the UI was built) and when the metric changes.
        gr.on(None, self.views, inputs=[metric], outputs=views, api_visibility="private", show_progress="hidden")
        return models
