"""Function calling on the Berkeley Function Calling Leaderboard's own questions, offline.

    pip install --no-deps bfcl-eval          # the leaderboard's data, as JSON lines in the package
    python -m benchmarks.bfcl [--items 50] [--llama-server PATH] [--categories simple_python,irrelevance]
                              [--template tests/data/templates/qwen2.5-instruct.jinja]

Runs the `simple_python`, `multiple`, `parallel` and `irrelevance` categories (the first `--items` of
each) against this app and, given a llama-server binary (built from the llama.cpp vendored in
llama-cpp-python's sdist, see benchmarks/engine_vs_llama_server.py; started with `--jinja`), against
llama-server on the same GGUF, alternating questions, and prints side by side: accuracy with a
BFCL-style AST check (function name; every argument among the accepted values, an optional one may be
left out; no unknown argument; parallel calls matched in any order; irrelevance = no call) and the
share of calls whose arguments validate against the tool's schema. With `--template`, both also run
with that chat template in place of the model's own (a template that teaches a native tool format:
the app's native-format path next to its JSON envelope, and llama-server's parser of that format).

Targets: 100% schema-valid calls; accuracy >= llama-server's in every category.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import jsonschema

from tests.support.servers import CHAT_MODEL, free_port, start_server, stop_server

CATEGORIES = ("simple_python", "multiple", "parallel", "irrelevance")
TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": None}


def data_dir() -> Path:
    spec = importlib.util.find_spec("bfcl_eval")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bfcl-eval is not installed: pip install --no-deps bfcl-eval")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def load(category: str, items: int) -> list[tuple[dict, list]]:
    root = data_dir()
    questions = [json.loads(line) for line in (root / f"BFCL_v4_{category}.json").read_text().splitlines()][:items]
    answers = {}
    answer_file = root / "possible_answer" / f"BFCL_v4_{category}.json"
    if answer_file.exists():
        answers = {(a := json.loads(line))["id"]: a["ground_truth"] for line in answer_file.read_text().splitlines()}
    return [(q, answers.get(q["id"], [])) for q in questions]


def json_schema(schema: dict) -> dict:
    """BFCL's Python-flavoured types ('dict', 'float', 'tuple', 'any') as JSON Schema."""
    out = {}
    for key, value in schema.items():
        if key == "type":
            mapped = TYPES.get(value, value)
            if mapped is not None:
                out["type"] = mapped
        elif key == "properties":
            out["properties"] = {name: json_schema(sub) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            out["items"] = json_schema(value)
        elif key not in ("optional",):
            out[key] = value
    return out


def tools_of(question: dict) -> tuple[list[dict], dict[str, str]]:
    """OpenAI tools (dots are not allowed in names: as BFCL's own OpenAI handler, '_') and name -> BFCL name."""
    tools, names = [], {}
    for function in question["function"]:
        name = re.sub(r"[^A-Za-z0-9_-]", "_", function["name"])[:64]
        names[name] = function["name"]
        tools.append({"type": "function", "function": {"name": name, "description": function.get("description", ""),
                                                       "parameters": json_schema(function["parameters"])}})
    return tools, names


def ask(base_url: str, question: dict) -> tuple[list[tuple[str, dict | None]], list[bool]]:
    """The calls the server made (BFCL name, arguments or None when not JSON) and whether each validated."""
    tools, names = tools_of(question)
    body = {"model": CHAT_MODEL, "messages": question["question"][0], "tools": tools, "tool_choice": "auto",
            "temperature": 0, "max_tokens": 256}
    reply = httpx.post(base_url + "/v1/chat/completions", json=body, timeout=300).json()
    calls, valid = [], []
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    choice = (reply.get("choices") or [{}])[0]
    made = choice.get("message", {}).get("tool_calls") or []
    if choice.get("finish_reason") == "length":
        made = made[:-1]  # cut short by max_tokens: the last call is unfinished, not invalid
    for call in made:
        name = call["function"]["name"]
        try:
            arguments = json.loads(call["function"]["arguments"])
        except ValueError:
            arguments = None
        valid.append(isinstance(arguments, dict) and name in schemas
                     and jsonschema.Draft202012Validator(schemas[name]).is_valid(arguments))
        calls.append((names.get(name, name), arguments))
    return calls, valid


def _same(value, accepted: list) -> bool:
    def norm(v):
        if isinstance(v, str):
            return re.sub(r"[\s,./\-_*^]", "", v).lower()
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return v
        return float(v)

    if isinstance(value, list) and any(isinstance(a, list) for a in accepted):
        return any(isinstance(a, list) and [norm(x) for x in value] == [norm(x) for x in a] for a in accepted)
    return norm(value) in [norm(a) for a in accepted]


def call_matches(call: tuple[str, dict | None], expected: dict) -> bool:
    (name, arguments), ((expected_name, params),) = call, expected.items()
    if name != expected_name or not isinstance(arguments, dict) or set(arguments) - set(params):
        return False
    return all(_same(arguments[p], accepted) if p in arguments else "" in accepted for p, accepted in params.items())


def correct(category: str, calls: list, truth: list) -> bool:
    if category == "irrelevance":
        return not calls
    if len(calls) != len(truth):
        return False
    remaining = list(truth)
    for call in calls:  # parallel calls may come in any order
        match = next((expected for expected in remaining if call_matches(call, expected)), None)
        if match is None:
            return False
        remaining.remove(match)
    return True


def start_llama_server(binary: str, model_path: Path, log: Path, context: int = 4096,
                       template: str | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([binary, "-m", str(model_path), "--port", str(port), "--jinja", "-t", "2", "-c",
                                str(context), *(["--chat-template-file", template] if template else [])],
                               stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"llama-server did not start (log: {log})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--llama-server", default=None)
    parser.add_argument("--categories", default=",".join(CATEGORIES))
    parser.add_argument("--template", default=None, help="also run both with this chat template")
    args = parser.parse_args()
    categories = args.categories.split(",")
    tmp = Path(tempfile.mkdtemp())
    flags = ("--model", CHAT_MODEL, "--no-ui", "--threads", "2", "--log-level", "warning")
    apps = [start_server(tmp, *flags)]
    sides = {"app": apps[0].url}
    if args.template:
        apps.append(start_server(tmp, *flags, "--chat-template-file", args.template))
        sides["app+tpl"] = apps[1].url
    peers = []
    if args.llama_server:
        from engines.catalog import find
        from engines.model_files import resolve_path

        for side, template in (("llama-server", None), ("llama-server+tpl", args.template)):
            if side == "llama-server" or template:
                peer, sides[side] = start_llama_server(args.llama_server, resolve_path(find(CHAT_MODEL)),
                                                       tmp / f"{side}.log", template=template)
                peers.append(peer)
    print(f"BFCL ({', '.join(categories)}; first {args.items} each), {CHAT_MODEL}, {os.cpu_count()} CPUs")
    print(f"{'category':16}" + "".join(f"{side + ' acc':>22}{side + ' valid':>24}" for side in sides))
    try:
        for category in categories:
            scores = {side: [0, 0, 0] for side in sides}  # correct, valid calls, calls
            items = load(category, args.items)
            for question, truth in items:
                for side, url in sides.items():  # alternating: both see the same machine load
                    calls, valid = ask(url, question)
                    scores[side][0] += correct(category, calls, truth)
                    scores[side][1] += sum(valid)
                    scores[side][2] += len(valid)
            print(f"{category:16}" + "".join(
                f"{s[0] / len(items):>22.0%}{(f'{s[1] / s[2]:.0%} of {s[2]}' if s[2] else 'no calls'):>24}"
                for s in scores.values()))
    finally:
        for app in apps:
            stop_server(app)
        for peer in peers:
            peer.terminate()
            peer.wait(10)


if __name__ == "__main__":
    main()
