"""tool-eval-bench's short run (15 agentic tool-calling scenarios with mock tools) against the app and,
given a llama-server binary, against llama-server `--jinja` on the same GGUF, one after the other.

    python -m venv /tmp/teb && /tmp/teb/bin/pip install tool-eval-bench
    python -m benchmarks.tool_eval_bench --tool-eval-bench /tmp/teb/bin/tool-eval-bench [--llama-server PATH]

Both get an 8192-token context (the scenarios' tool lists do not fit in the catalog's 2048). Prints
each side's points, pass / partial / fail counts and final score.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from benchmarks.bfcl import start_llama_server
from engines.catalog import find
from engines.model_files import resolve_path
from tests.support.servers import CHAT_MODEL, start_server, stop_server

CONTEXT = 8192


def run(command: str, base_url: str, out: Path, timeout: float) -> str:
    report = out / "report.json"
    try:
        subprocess.run([command, "run", "--short", "--base-url", base_url + "/v1", "--model", CHAT_MODEL, "--seed",
                        "42", "--no-live", "--json-file", str(report), "--output-dir", str(out)],
                       capture_output=True, text=True, timeout=timeout, cwd=out)
    except subprocess.TimeoutExpired:
        return f"did not finish within {timeout:g} s"
    scores = json.loads(report.read_text())["scores"]
    statuses = [r["status"] for r in scores["scenario_results"]]
    return (f"{scores['total_points']}/{scores['max_points']} points, pass {statuses.count('pass')}, "
            f"partial {statuses.count('partial')}, fail {statuses.count('fail')}, final score {scores['final_score']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tool-eval-bench", default="tool-eval-bench")
    parser.add_argument("--llama-server", default=None)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a side may take")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    app = start_server(tmp, "--model", CHAT_MODEL, "--no-ui", "--threads", "2", "--ctx", str(CONTEXT),
                       "--log-level", "warning")
    try:
        (tmp / "app").mkdir()
        print(f"tool-eval-bench --short, {CHAT_MODEL}, context {CONTEXT}")
        print(f"app:          {run(args.tool_eval_bench, app.url, tmp / 'app', args.timeout)}")
    finally:
        stop_server(app)
    if args.llama_server:
        peer, url = start_llama_server(args.llama_server, resolve_path(find(CHAT_MODEL)), tmp / "llama-server.log",
                                       context=CONTEXT)
        try:
            (tmp / "llama-server").mkdir()
            print(f"llama-server: {run(args.tool_eval_bench, url, tmp / 'llama-server', args.timeout)}")
        finally:
            peer.terminate()
            peer.wait(10)


if __name__ == "__main__":
    main()
