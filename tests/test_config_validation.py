"""A wrong config key or value fails before any job runs, naming the key; config/config.yaml
is the one place a default lives, and shows every setting the schema knows."""

import json
import re
import subprocess
import sys

import jsonschema
import pytest
import yaml

from .configs import DEMO, DEMO_YAML, REAL
from .workflow import ROOT, snakemake, write_config


@pytest.mark.parametrize(
    "overrides,expected",
    [
        ({"infer": {"batch_sise": 4}}, "batch_sise"),
        ({"preprocess": {"resize_kernel": "lanczos"}}, "resize_kernel"),
        ({"score": {"max_detections": -3}}, "max_detections"),
        ({"model": {"arch": "resnet18"}}, "resnet18"),
        ({"calibraton": {"count": 10}}, "calibraton"),
        ({"quantize": {"histogram_bins": 128}}, "histogram_bins"),
        ({"infer": {"device": "gpu"}}, "device"),
        ({"pytorch": {"compile": "fast"}}, "compile"),
        ({"pytorch": {"cuda_graph": True}}, "cuda_graph"),
        ({"preprocess": {"decode": "nvjpeg"}}, "decode"),
        ({"summary": {"variants": ["torch-fp8"]}}, "torch-fp8"),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path, overrides, expected):
    bad = write_config(tmp_path / "bad.yaml", overrides)
    proc = snakemake(tmp_path, "--", "results/map_onnx.json", configfiles=[bad], check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Error validating config" in out
    assert expected in out
    assert not (tmp_path / "data").exists()  # nothing ran


@pytest.mark.parametrize(
    "overrides,expected",
    [
        (
            {"model": {"weights": {"source": "local", "path": "missing/weights.pt"}}},
            "model.weights.path: missing/weights.pt does not exist",
        ),
        (
            {"dataset": {"name": "oi", "source": "local", "local_root": "no/such/folder"}},
            "dataset.local_root: no/such/folder is not a folder",
        ),
        (
            {"dataset": {"name": "oi", "source": "direct", "urls": {"boxes": "hand/boxes.csv"}}},
            "dataset.urls.boxes: hand/boxes.csv is neither an http(s) URL nor an existing",
        ),
    ],
)
def test_missing_file_fails_before_any_job_naming_the_key(tmp_path, overrides, expected):
    """Files a config names are checked when the workflow is parsed: one line per problem, the
    key first, as the last thing printed, and no job runs."""
    bad = write_config(tmp_path / "bad.yaml", overrides)
    proc = snakemake(tmp_path, "--", "results/map_onnx.json", configfiles=[bad], check=False)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode != 0
    problems = lines[lines.index("retinaflow: invalid config:") + 1 :]  # the last lines
    assert any(line.strip().startswith(expected) for line in problems), lines[-5:]
    assert not (tmp_path / "data").exists() and not (tmp_path / "logs").exists()


# --- one source of truth: config/config.yaml holds every setting and its default ------------

SCHEMA_YAML = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def _schema() -> dict:
    return yaml.safe_load(SCHEMA_YAML.read_text())


def _schema_keys(node: dict, prefix: str = "") -> set[str]:
    """The dotted keys the schema declares, through nested objects (per-scenario and
    per-precision maps included: their keys are declared properties)."""
    keys = set()
    for name, sub in node.get("properties", {}).items():
        keys.add(prefix + name)
        keys |= _schema_keys(sub, f"{prefix}{name}.")
    return keys


def _config_keys(config: dict, schema: dict, prefix: str = "") -> set[str]:
    """The dotted keys of a config, descending where the schema declares an object's keys (a
    value that may be a free dict, such as compile.target, is one setting)."""
    keys = set()
    for name, value in config.items():
        keys.add(prefix + name)
        sub = schema.get("properties", {}).get(name, {})
        if isinstance(value, dict) and "properties" in sub:
            keys |= _config_keys(value, sub, f"{prefix}{name}.")
    return keys


def _defaults(node, path: str = "") -> list[str]:
    """Where the schema has a `default` keyword (anywhere, nested schemas included)."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}/{key}"
            if key == "default" and path.rpartition("/")[2] != "properties":
                found.append(path or "/")
            found += _defaults(value, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _defaults(value, f"{path}/{i}")
    return found


def _leaves(config: dict, prefix: str = ""):
    for name, value in config.items():
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{prefix}{name}.")
        else:
            yield prefix + name, value


def _validation_errors(config: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(_schema())
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(config)
    ]


def test_config_yaml_shows_every_setting_the_schema_knows():
    schema_keys = _schema_keys(_schema())
    config_keys = _config_keys(REAL, _schema())
    assert not schema_keys - config_keys, "in the schema, not in config/config.yaml"
    assert not config_keys - schema_keys, "in config/config.yaml, not in the schema"


def test_schema_holds_no_defaults():
    """Defaults live in config/config.yaml only: the schema checks types, choices and ranges."""
    assert _defaults(_schema()) == []
    assert "default:" not in SCHEMA_YAML.read_text()


@pytest.mark.parametrize("config", [REAL, DEMO], ids=["config.yaml", "demo.yaml over it"])
def test_configs_validate_against_the_schema(config):
    assert _validation_errors(config) == []


def test_demo_yaml_holds_only_what_differs():
    """config/demo.yaml is merged over config/config.yaml: every value it sets is a key of
    config.yaml whose value it changes."""
    real = dict(_leaves(REAL))
    for key, value in _leaves(yaml.safe_load(DEMO_YAML.read_text())):
        assert key in real, f"{key} is not a setting of config/config.yaml"
        assert value != real[key], f"{key}: {value!r} is config/config.yaml's value already"


def test_config_yaml_is_what_the_workflow_runs_with(tmp_path):
    """Snakemake adds nothing to config/config.yaml: the schema fills no default in."""
    probe = tmp_path / "Snakefile"
    probe.write_text(
        f"include: {str(ROOT / 'Snakefile')!r}\n"
        "import json\n"
        f"open({str(tmp_path / 'config.json')!r}, 'w').write(json.dumps(config))\n"
    )
    for name in ("config", "workflow", "resources"):
        (tmp_path / name).symlink_to(ROOT / name)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(probe), "-n", "--cores", "1", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "config.json").read_text()) == REAL


def test_no_library_module_spells_a_config_key():
    """The library names a setting by its own name (errors.ref); only the rule layer maps it to
    a config key (scripting.config_keys, called by workflow/scripts), so that renaming a key
    touches no library module. config_checks.py is exempt: it is the config's own validator,
    run on the config file itself before any job. Every dotted key of config/config.yaml is
    searched for, at any depth, in code, strings and comments alike."""
    keys = {key for key in _config_keys(REAL, _schema()) if "." in key}
    alternation = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))
    spelled = re.compile(rf"(?<![\w.{{])({alternation})(?![\w])")  # {x.y}: f-string code
    found = []
    for path in sorted((ROOT / "src" / "retinaflow").rglob("*.py")):
        if path.name == "config_checks.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = spelled.search(line)
            if match:
                found.append(f"{path.relative_to(ROOT)}:{number}: {match[1]}")
    assert not found, "config keys spelled in the library:\n" + "\n".join(found)
