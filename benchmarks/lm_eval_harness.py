"""lm-evaluation-harness against the app, checked against llama-cpp-python scoring the same tokens.

    python -m venv /tmp/lm-eval && /tmp/lm-eval/bin/pip install "lm-eval[api]"   # its own venv: it needs numpy 2
    python -m benchmarks.lm_eval_harness --lm-eval /tmp/lm-eval/bin/lm_eval

Runs a small multiple-choice task kept in this repository (evals/data/multiple_choice.jsonl, no
dataset download) with lm-eval's `local-completions` backend against `app.py`: the server's own
tokenizer (`tokenizer_backend=remote`: /tokenizer_info, /tokenize, /detokenize) and its
log-likelihoods (`echo` with `logprobs`). Then scores every (context, choice) of the logged samples
with llama-cpp-python directly — the same token ids, read whole — and prints the accuracy and the
largest difference between the two log-likelihoods (target: within 1e-3).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

import httpx
import llama_cpp
import numpy as np

from engines.catalog import find
from engines.model_files import resolve_path
from tests.support.servers import CHAT_MODEL, start_server, stop_server

DATA = Path(__file__).resolve().parent.parent / "evals" / "data" / "multiple_choice.jsonl"
TASK = """task: playground_multiple_choice
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: acc
"""


def direct_loglikelihood(llm: llama_cpp.Llama, context: list[int], continuation: list[int]) -> float:
    """log P(continuation | context), reading the tokens whole, as the server does for `echo`."""
    llm.reset()
    llm.eval(context + continuation)
    logits = np.asarray(llm.scores[: len(context) + len(continuation)], dtype=np.float64)
    peak = logits.max(axis=1, keepdims=True)
    logprobs = logits - (peak + np.log(np.exp(logits - peak).sum(axis=1, keepdims=True)))
    return float(sum(logprobs[len(context) + i - 1, token] for i, token in enumerate(continuation)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lm-eval", default="lm_eval", help="the lm_eval command (e.g. from its own venv)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    (tmp / "task.yaml").write_text(TASK.format(data=DATA))
    server = start_server(tmp, "--model", CHAT_MODEL, "--no-ui", "--threads", "2", "--log-level", "warning")
    try:
        done = subprocess.run(
            [args.lm_eval, "--model", "local-completions", "--model_args",
             f"model={CHAT_MODEL},base_url={server.v1}/completions,tokenizer_backend=remote,tokenized_requests=True",
             "--tasks", "playground_multiple_choice", "--include_path", str(tmp), "--output_path", str(tmp / "out"),
             "--log_samples"], capture_output=True, text=True, timeout=1800,
            env={**os.environ, "OPENAI_API_KEY": "unused", "HF_DATASETS_OFFLINE": "1"})
        if done.returncode != 0:
            raise SystemExit(f"lm_eval failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        results = json.loads(next((tmp / "out").rglob("results_*.json")).read_text())
        samples = [json.loads(line) for line in next((tmp / "out").rglob("samples_*.jsonl")).read_text().splitlines()]

        def tokens(text: str) -> list[int]:
            return httpx.post(server.url + "/tokenize", json={"content": text}).json()["tokens"]

        llm = llama_cpp.Llama(str(resolve_path(find(CHAT_MODEL))), n_ctx=2048, n_threads=2, logits_all=True,
                              verbose=False)
        differences, examples = [], None
        for sample in samples:
            pairs = [(a["arg_0"], a["arg_1"]) for _, a in sorted(sample["arguments"].items(),
                                                                 key=lambda item: int(item[0].rpartition("_")[2]))]
            for (context, continuation), response in zip(pairs, sample["resps"], strict=True):
                served = float(response[0][0])
                # As lm-eval encodes a pair: trailing spaces move to the continuation, which is what the
                # whole text's tokens hold after the context's.
                spaces = len(context) - len(context.rstrip())
                if spaces:
                    context, continuation = context[:-spaces], context[-spaces:] + continuation
                head = tokens(context)
                direct = direct_loglikelihood(llm, head, tokens(context + continuation)[len(head):])
                differences.append(abs(served - direct))
                examples = examples or (served, direct)
    finally:
        stop_server(server)
    accuracy = results["results"]["playground_multiple_choice"]["acc,none"]
    print(f"lm-eval local-completions, {len(samples)} questions, {len(differences)} log-likelihoods, {CHAT_MODEL}")
    print(f"accuracy {accuracy:.3f}; served vs llama-cpp-python: max |difference| {max(differences):.2e}, "
          f"mean {np.mean(differences):.2e} (target <= 1e-3); e.g. {examples[0]:.6f} served, {examples[1]:.6f} direct")


if __name__ == "__main__":
    main()
