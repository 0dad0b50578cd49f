"""Benchmark runs shared by the playground's Benchmarks tab and the `benchmarks/` scripts.

`speed` and `quality` measure one model through the engine contract; `suite` runs them with checked
options and makes a `Run`; `results` writes runs as JSON files (one per run) and reads them back as
history. No web framework here: the Gradio tab and the command line are thin callers.
"""
