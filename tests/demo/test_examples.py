"""The example manifests the demo applies agree with the API, with each other and with the
data the demo uploads: a drift here would only show minutes into a demo run."""

from __future__ import annotations

from typing import Any

import pytest

from warmstart.api import ModelLineage, WarmStartJob
from warmstart.demo import manifests as m
from warmstart.demo.data import Example, WindowSizes, cut_windows
from warmstart.demo.plan import FULL, QUICK, WEEKS, Plan
from warmstart.demo.story import MODEL_NAME, REPLAY_AFTER_WEEK1


def uploaded_keys() -> set[str]:
    sizes = WindowSizes(1, 1, 1, 1, 1, 1)
    corpus = [Example(str(i), "positive") for i in range(sizes.total(WEEKS))]
    keys = set(cut_windows(corpus, sizes, WEEKS))
    keys |= {f"latest/{k.split('/', 1)[1]}" for k in keys if k.startswith(f"week{WEEKS}/")}
    return keys


def datasets_prefix() -> str:
    return m.storage_uris(m.load(m.LINEAGE_EXAMPLE))[2]


@pytest.mark.parametrize("plan", [FULL, QUICK], ids=lambda p: p.name)
def test_every_object_validates_as_the_demo_applies_it(plan: Plan) -> None:
    ModelLineage.model_validate(m.lineage_for_demo(
        m.load(m.LINEAGE_EXAMPLE), replay_keys=REPLAY_AFTER_WEEK1, pinned=m.WEEK1,
        promotion=plan.promotion))
    for name, example in m.JOB_EXAMPLES.items():
        job = WarmStartJob.model_validate(m.job_for_demo(m.load(example), plan.training.get(name)))
        assert job.spec.lineage_ref.name == m.LINEAGE


def test_quick_overrides_name_jobs_that_exist() -> None:
    assert set(QUICK.training) <= set(m.JOB_EXAMPLES)


def test_every_dataset_a_manifest_names_is_one_the_demo_uploads() -> None:
    prefix, keys = datasets_prefix(), uploaded_keys()
    lineage = m.lineage_for_demo(m.load(m.LINEAGE_EXAMPLE), replay_keys=REPLAY_AFTER_WEEK1)
    spec = lineage["spec"]
    named: list[str] = [spec["evaluation"]["holdoutURI"], *spec["evaluation"]["replayURIs"],
                        *m.load(m.LINEAGE_EXAMPLE)["spec"]["evaluation"]["replayURIs"],
                        spec["retraining"]["template"]["dataset"]["trainURI"],
                        spec["retraining"]["template"]["dataset"]["validationURI"]]
    for example in m.JOB_EXAMPLES.values():
        dataset = m.load(example)["spec"]["dataset"]
        named += [dataset["trainURI"], dataset["validationURI"]]
    for uri in named:
        assert uri.startswith(prefix), uri
        assert uri[len(prefix):] in keys, uri


def test_the_week3_job_trains_on_the_mislabelled_window() -> None:
    dataset = m.load(m.JOB_EXAMPLES[m.MISLABELLED])["spec"]["dataset"]
    assert dataset["trainURI"].endswith(f"week{WEEKS + 1}/train.jsonl")


def test_the_baseline_differs_from_the_warm_start_only_in_initialisation() -> None:
    warm = m.load(m.JOB_EXAMPLES[m.WEEK2])["spec"]
    cold = m.load(m.JOB_EXAMPLES[m.WEEK2_COLD])["spec"]
    assert cold["coldStart"] is True and cold["promotion"] == "Never"
    assert cold["dataset"] == warm["dataset"]
    for key in ("maxEpochs", "batchSize", "maxSeqLength", "seed"):
        assert cold["training"][key] == warm["training"][key], key


def container(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    assert found, f"no container {name}"
    chosen: dict[str, Any] = found[0]
    return chosen


def test_the_deployment_is_the_one_the_lineage_serves_with() -> None:
    serving = m.load(m.LINEAGE_EXAMPLE)["spec"]["serving"]
    deployment = m.load(m.DEPLOYMENT_EXAMPLE)
    assert deployment["metadata"]["name"] == serving["deploymentRef"]["name"]
    server = container(deployment, serving["container"])
    command = " ".join(server["command"])
    assert f"$({serving['modelURIEnv']})" in command
    assert f"$({serving['modelDigestEnv']})" in command
    assert f"--model-name {MODEL_NAME}" in command
    # The operator owns these two variables; the manifest must leave them to it.
    assert {e["name"] for e in server.get("env", [])}.isdisjoint(
        {serving["modelURIEnv"], serving["modelDigestEnv"]})
    assert server["envFrom"] == [{"secretRef": {"name": m.SECRET}}]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels == deployment["spec"]["selector"]["matchLabels"] == {"app": m.DEPLOYMENT}
