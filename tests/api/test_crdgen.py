"""The CRD generator: deterministic, in sync with crds/, and structurally what Kubernetes
accepts and kubectl explains."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import annotated_types
import pytest
import yaml
from pydantic import Field

from warmstart.api import crdgen
from warmstart.api.base import ApiModel
from warmstart.api.openapi import SchemaError, object_schema

REPO = Path(__file__).resolve().parents[2]
CRD_DIR = REPO / "crds"


@functools.cache
def rendered() -> dict[str, dict[str, Any]]:
    return {name: yaml.safe_load(text) for name, text in crdgen.render_all().items()}


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node below `node`, with a readable path."""
    yield path, node
    for key, child in node.get("properties", {}).items():
        yield from walk(child, f"{path}.{key}")
    if "items" in node:
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def all_nodes() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{name}:{path}", node)
        for name, crd in rendered().items()
        for path, node in walk(schema_of(crd))
    ]


def test_committed_crds_match_the_models() -> None:
    stale = crdgen.drifted(CRD_DIR)
    assert not stale, f"crds/ drifted from warmstart/api: run scripts/gen-crds ({stale})"


def test_one_file_per_kind() -> None:
    assert sorted(crdgen.render_all()) == [
        "warmstart.dev_modellineages.yaml",
        "warmstart.dev_warmstartjobs.yaml",
    ]


def test_output_does_not_depend_on_the_interpreter_run() -> None:
    # A fresh interpreter with another hash seed: set or dict ordering leaking into the
    # output would show up as drift.
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-m", "warmstart.api.crdgen", "--check", "--out", str(CRD_DIR)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert crdgen.render_all() == crdgen.render_all()


def test_check_mode_reports_a_hand_edited_file(tmp_path: Path) -> None:
    crdgen.write(tmp_path)
    assert crdgen.main(["--check", "--out", str(tmp_path)]) == 0
    target = tmp_path / "warmstart.dev_warmstartjobs.yaml"
    target.write_text(target.read_text().replace("maxEpochs", "epochs"))
    assert crdgen.main(["--check", "--out", str(tmp_path)]) == 1
    assert crdgen.drifted(tmp_path) == ["warmstart.dev_warmstartjobs.yaml"]


def test_no_refs_or_free_unions_anywhere() -> None:
    for name, text in crdgen.render_all().items():
        assert "$ref" not in text, name
    for path, node in all_nodes():
        if "anyOf" in node:
            # The one structural use: int-or-string, as Kubernetes' own quantities.
            assert node.get("x-kubernetes-int-or-string") is True, path
            assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
        assert "oneOf" not in node and "allOf" not in node, path
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        assert "nullable" not in node, path


def test_every_node_is_typed() -> None:
    for path, node in all_nodes():
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path


def test_every_field_has_a_description() -> None:
    for path, node in all_nodes():
        if path.endswith(".metadata") or path.endswith("{}"):
            continue  # metadata is the API server's; map values are described by the map
        if path.endswith("[]") and node["type"] != "object":
            continue  # scalar list items are described by the list
        assert node.get("description", "").strip(), f"{path} has no description"


def test_cel_cost_stays_bounded() -> None:
    # The API server estimates a rule's worst-case cost from maxLength/maxItems; without
    # them it assumes the request size limit and refuses expensive rules.
    for path, node in all_nodes():
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path}: unbounded list"
        if node.get("type") == "string" and "x-kubernetes-validations" in node:
            assert "maxLength" in node, f"{path}: CEL rule on an unbounded string"
        if node.get("type") == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, f"{path}: unbounded map"


def test_cel_rules_carry_messages() -> None:
    for path, node in all_nodes():
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["message"].strip(), f"{path}: rule {rule['rule']} has no message"


def spec_rules(crd: dict[str, Any]) -> list[str]:
    return [r["rule"] for r in schema_of(crd)["properties"]["spec"]["x-kubernetes-validations"]]


def test_job_spec_fields_that_shape_the_result_are_immutable() -> None:
    rules = spec_rules(rendered()["warmstart.dev_warmstartjobs.yaml"])
    for field in ("lineageRef", "parent", "coldStart", "dataset", "training"):
        assert f"self.{field} == oldSelf.{field}" in rules
    assert not any("suspend" in r or "resources" in r for r in rules)


def test_template_in_lineage_is_not_immutable() -> None:
    lineage = schema_of(rendered()["warmstart.dev_modellineages.yaml"])
    template = lineage["properties"]["spec"]["properties"]["retraining"]["properties"]["template"]
    assert "lineageRef" not in template["properties"]
    assert not any("oldSelf" in r["rule"] for r in template.get("x-kubernetes-validations", []))


def test_required_fields() -> None:
    crds = rendered()
    job = schema_of(crds["warmstart.dev_warmstartjobs.yaml"])
    assert job["required"] == ["spec"]
    assert job["properties"]["spec"]["required"] == ["dataset", "lineageRef"]
    lineage = schema_of(crds["warmstart.dev_modellineages.yaml"])
    assert lineage["properties"]["spec"]["required"] == [
        "labels",
        "storage",
        "base",
        "evaluation",
    ]


def test_bounds_use_openapi_v3_0_boolean_exclusive_minimum() -> None:
    job = schema_of(rendered()["warmstart.dev_warmstartjobs.yaml"])
    rate = job["properties"]["spec"]["properties"]["training"]["properties"]["learningRate"]
    assert rate["minimum"] == 0
    assert rate["exclusiveMinimum"] is True


def resolve(schema: dict[str, Any], json_path: str) -> dict[str, Any]:
    node = schema
    for part in json_path.lstrip(".").split("."):
        name = part.split("[")[0]
        node = node["properties"][name]
        if "[" in part:
            node = node["items"]
    return node


def test_printer_columns_point_at_fields_that_exist() -> None:
    for name, crd in rendered().items():
        version = crd["spec"]["versions"][0]
        for column in version["additionalPrinterColumns"]:
            if column["jsonPath"].startswith(".metadata"):
                continue
            path = column["jsonPath"].replace('[?(@.type=="Ready")].status', "[].status")
            node = resolve(schema_of(crd), path)
            assert node["type"] == column["type"], f"{name}: {column['name']}"


def test_printer_columns_shortnames_and_category() -> None:
    crds = rendered()
    expected = {
        "warmstart.dev_warmstartjobs.yaml": ("wsj", ["Phase", "Lineage", "Parent", "Metric"]),
        "warmstart.dev_modellineages.yaml": ("mlin", ["Serving", "Latest", "Versions", "Ready"]),
    }
    for name, (short, columns) in expected.items():
        spec = crds[name]["spec"]
        assert spec["names"]["shortNames"] == [short]
        assert spec["names"]["categories"] == ["warmstart"]
        assert spec["scope"] == "Namespaced"
        version = spec["versions"][0]
        assert version["subresources"] == {"status": {}}
        shown = [c["name"] for c in version["additionalPrinterColumns"] if "priority" not in c]
        assert shown == [*columns, "Age"]


class _Undocumented(ApiModel):
    field: int = 1


class _UnsupportedConstraint(ApiModel):
    field: Annotated[int, annotated_types.MultipleOf(2)] = 2
    """Even."""


class _EmptyListDefault(ApiModel):
    items: list[str] = Field(default_factory=list)
    """Items."""


@pytest.mark.parametrize("model", [_Undocumented, _UnsupportedConstraint, _EmptyListDefault])
def test_generator_refuses_what_it_cannot_carry_into_the_crd(model: type[ApiModel]) -> None:
    with pytest.raises(SchemaError):
        object_schema(model)
