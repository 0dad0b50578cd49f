"""Speed and quality of the models this app hosts, in-process, saved as result files the playground charts.

    python -m benchmarks.models [--suite speed --suite quality] [--prompts 2] [--max-tokens 32]
                                [--questions 4] [APP FLAGS: --model ID ... --threads N --results-dir DIR]

Loads the models exactly as `app.py` would with the same flags (every app flag works: --model, --threads,
--ctx, --speculative, ...), then runs the Benchmarks tab's runner (evals/) on each hosted model, one after
another: speed (median time to first token, decode tokens/s, over fixed prompts that each generate exactly
--max-tokens) and quality (accuracy on the first --questions of evals/data/multiple_choice.jsonl, the
answer constrained to the choices). Each model's run is written as one JSON file into --results-dir
(default results/), where the playground's Benchmarks tab shows it beside the runs made from the UI.
"""

from __future__ import annotations

import argparse
import asyncio

from evals import results
from evals.suite import SUITES, check, run_model
from fleet.node import build_node
from settings import parse_args

SOURCE = "benchmarks.models"


async def bench(argv: list[str] | None = None) -> list[results.Run]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Any other flag is an app.py flag (python app.py --help).")
    parser.add_argument("--suite", action="append", choices=SUITES, help="speed and/or quality (default: both)")
    parser.add_argument("--prompts", type=int, default=2, help="speed: fixed prompts, one after another")
    parser.add_argument("--max-tokens", type=int, default=32, help="speed: tokens generated per prompt")
    parser.add_argument("--questions", type=int, default=4, help="quality: the first N multiple-choice questions")
    args, app_flags = parser.parse_known_args(argv)
    try:
        options = check(suites=args.suite or list(SUITES), prompts=args.prompts, max_tokens=args.max_tokens,
                        questions=args.questions)
    except ValueError as exc:
        parser.error(str(exc))
    settings, _ = parse_args(app_flags)
    node = build_node(settings)
    await node.load_models()
    saved = []
    try:
        for pool in node.registry.entries():
            if pool.local is None or pool.state != "ready":
                raise SystemExit(f"{pool.model_id} did not load: {pool.local.error if pool.local else pool.error}")
            run = await run_model(node.registry.get(pool.model_id), pool.model_id, chat=pool.spec.chat,
                                  options=options, source=SOURCE,
                                  step=lambda what, model=pool.model_id: print(f"  {model}: {what}", flush=True))
            saved.append(results.write(run, settings.results_dir))
            figures = ", ".join(f"{name} {value:g}" for name, value in run.figures.items())
            print(f"{pool.model_id}: {figures} -> {settings.results_dir}/{saved[-1].file}", flush=True)
    finally:
        await node.registry.aclose()
    return saved


def main() -> None:
    asyncio.run(bench())


if __name__ == "__main__":
    main()
