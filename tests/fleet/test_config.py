"""The fleet file (YAML and TOML), its error messages, and serverless-llm's environment conventions."""

from __future__ import annotations

import pytest

from fleet.config import GITHUB_MODELS_URL, FleetError, from_environment, load, merge

YAML = """\
models:
  smollm2-135m-instruct:
    instances:
      - local: true
      - url: http://10.0.0.7:7860/v1
        api_key_env: RUNNER_KEY
        max_concurrent: 3
  openai/gpt-4.1-mini:
    instances:
      - url: https://models.github.ai/inference
        probe: none
"""


def test_yaml_fleet_file_lists_local_and_remote_instances(tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_text(YAML)
    config = load(path)
    assert config.local_models() == ["smollm2-135m-instruct"]
    remote = config.remote_instances()
    assert [(m, i.url, i.max_concurrent) for m, i in remote] == [
        ("smollm2-135m-instruct", "http://10.0.0.7:7860/v1", 3),
        ("openai/gpt-4.1-mini", "https://models.github.ai/inference", 2)]
    assert remote[0][1].display_name() == "10.0.0.7:7860" and remote[1][1].probe == "none"


def test_toml_fleet_file(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text('[[models."smollm2-135m-instruct".instances]]\nlocal = true\n'
                    '[[models."smollm2-135m-instruct".instances]]\nurl = "http://127.0.0.1:9000/v1"\n')
    config = load(path)
    assert config.local_models() == ["smollm2-135m-instruct"] and len(config.remote_instances()) == 1


@pytest.mark.parametrize("text, expected", [
    (YAML.replace("max_concurrent: 3", "max_concurrent: 0"),
     "fleet.yaml:7: models.smollm2-135m-instruct.instances[1].max_concurrent: Input should be greater than"),
    (YAML.replace("probe: none", "probe: sometimes"),
     "fleet.yaml:11: models.openai/gpt-4.1-mini.instances[0].probe: Input should be 'auto', 'health'"),
    (YAML.replace("api_key_env: RUNNER_KEY", "api_kee_env: RUNNER_KEY"),
     "fleet.yaml:6: models.smollm2-135m-instruct.instances[1].api_kee_env: Extra inputs are not permitted"),
    (YAML.replace("url: http://10.0.0.7:7860/v1", "url: 10.0.0.7:7860"),
     "fleet.yaml:5: models.smollm2-135m-instruct.instances[1]: url must start with http:// or https://"),
    (YAML.replace("- local: true", "- local: true\n        url: http://x/v1"),
     "fleet.yaml:4: models.smollm2-135m-instruct.instances[0]: give either `local: true` or a `url`"),
    ("models:\n  a: [unclosed\n", "fleet.yaml: not valid YAML"),
    ("- just a list\n", "fleet.yaml: expected a mapping with a `models` key"),
])
def test_bad_fleet_file_names_line_and_field(tmp_path, text, expected):
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    with pytest.raises(FleetError) as caught:
        load(path)
    assert expected in str(caught.value)


def test_bad_toml_and_missing_file(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text('[[models.x.instances]]\nurl = "http://a/v1"\nmax_concurrent = "two"\n')
    with pytest.raises(FleetError, match=r"models\.x\.instances\[0\]\.max_concurrent"):
        load(path)
    with pytest.raises(FleetError, match="cannot read fleet file"):
        load(tmp_path / "nope.yaml")


def test_environment_conventions_of_serverless_llm():
    config = from_environment({
        "QWEN_API_URL": "http://localhost:8100, http://10.0.0.2:8100/",  # serverless-llm's service name
        "SMOLLM2_135M_INSTRUCT_API_URL": "http://127.0.0.1:7861/v1",  # or the model id
        "BASE_DOMAIN": "example.org",
        "GH_MODELS_TOKEN": "ghp_x", "GH_MODELS": "openai/gpt-4.1-mini",
    })
    urls = {mid: [i.url for i in m.instances] for mid, m in config.models.items()}
    assert urls["qwen3-4b"] == ["http://localhost:8100/v1", "http://10.0.0.2:8100/v1"]
    assert urls["smollm2-135m-instruct"] == ["http://127.0.0.1:7861/v1"]
    assert urls["phi-4-mini"] == ["https://phi.example.org/v1"]  # BASE_DOMAIN: https://{service}.{domain}
    assert "gemma3-270m" not in urls  # embedded models are never assumed to run elsewhere
    github = config.models["openai/gpt-4.1-mini"].instances[0]
    assert github.url == GITHUB_MODELS_URL and github.api_key_env == "GH_MODELS_TOKEN" and github.probe == "none"
    assert from_environment({}).models == {}


def test_merge_keeps_every_instance(tmp_path):
    path = tmp_path / "fleet.yaml"
    path.write_text(YAML)
    merged = merge(load(path), from_environment({"SMOLLM2_135M_INSTRUCT_API_URL": "http://h:1"}))
    assert len(merged.models["smollm2-135m-instruct"].instances) == 3


PERSONAS = """\
personas:
  - id: lawyer
    name: The Lawyer
    system: You are a careful lawyer.
    temperature: 0.4
"""


def test_fleet_file_personas_join_the_default_panel_or_name_what_is_wrong(tmp_path):
    from engines.catalog import find
    from engines.registry import ModelRegistry
    from fleet.node import add_personas

    path = tmp_path / "fleet.yaml"
    path.write_text(YAML + PERSONAS)
    config = load(path)
    registry = ModelRegistry()
    registry.add(find("smollm2-135m-instruct"))  # still loading: personas can name it already
    add_personas(registry, config.personas)
    assert list(registry.personas) == ["skeptic", "optimist", "engineer", "teacher", "lawyer"]
    assert registry.personas["lawyer"].model == "smollm2-135m-instruct"
    path.write_text(YAML + PERSONAS.replace("id: lawyer", "id: Lawyer!"))
    with pytest.raises(FleetError, match=r"fleet.yaml:13: personas\[0\]\.id: String should match pattern"):
        load(path)
    path.write_text(YAML + PERSONAS.replace("temperature: 0.4", "model: nope"))
    with pytest.raises(FleetError, match="persona 'lawyer': The persona's model 'nope' is not hosted here"):
        add_personas(ModelRegistry(), load(path).personas)


def test_app_refuses_a_bad_fleet_file_at_start(tmp_path):
    import subprocess
    import sys

    from tests.support.servers import ROOT

    path = tmp_path / "fleet.yaml"
    path.write_text(YAML.replace("max_concurrent: 3", "max_concurrent: lots"))
    done = subprocess.run([sys.executable, "app.py", "--fleet", str(path), "--no-ui"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "fleet.yaml:7: models.smollm2-135m-instruct.instances[1].max_concurrent" in done.stderr


def test_the_documented_example_is_valid():
    from tests.support.servers import ROOT

    config = load(ROOT / "fleet.example.yaml")
    assert config.local_models() == ["smollm2-135m-instruct"]
    assert [m for m, _ in config.remote_instances()] == ["smollm2-135m-instruct", "qwen3-4b", "openai/gpt-4.1-mini"]
