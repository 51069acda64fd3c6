"""A trainer image that cannot be pulled ends the run Failed with the pull error named,
instead of leaving it in Training while the kubelet retries forever."""

from __future__ import annotations

from typing import Any

from tests.operator.harness import NS, Harness, make_lineage, make_wsj
from warmstart_operator.config import OperatorConfig

PULL_GRACE_SECONDS = OperatorConfig().image_pull_grace_seconds  # the default


def _stuck_pod(h: Harness, job: str, reason: str, message: str = "") -> None:
    pod: dict[str, Any] = {
        "metadata": {"name": f"{job}-x1", "namespace": NS, "labels": {"job-name": job}},
        "spec": {"containers": [{"name": "trainer", "image": "registry.local/nope:1"}]},
        "status": {"phase": "Pending", "containerStatuses": [{
            "name": "trainer", "image": "registry.local/nope:1", "ready": False,
            "state": {"waiting": {"reason": reason, "message": message}}}]},
    }
    h.kube.put("Pod", pod)


def _job(h: Harness, name: str) -> dict[str, Any]:
    job = h.kube.get_job(NS, name)
    assert job is not None, name
    return job


def _started(name: str = "week1") -> tuple[Harness, str]:
    h = Harness()
    h.create(make_lineage().obj())
    h.create(make_wsj(name).obj())
    assert h.phase(name) == "Training"
    job = h.wsj(name)["status"]["jobName"]
    return h, job


def test_a_pull_that_keeps_failing_fails_the_run_after_the_grace_period() -> None:
    h, job = _started()
    _stuck_pod(h, job, "ImagePullBackOff",
               'Back-off pulling image "registry.local/nope:1": not found')
    h.run_for(PULL_GRACE_SECONDS / 2)
    assert h.phase("week1") == "Training"  # a registry's bad minute is not a failure yet
    h.run_for(PULL_GRACE_SECONDS)
    assert h.phase("week1") == "Failed"
    failed = h.condition("Failed", h.wsj("week1"))
    assert failed["reason"] == "ImagePullFailed"
    assert "registry.local/nope:1" in failed["message"]
    assert "not found" in failed["message"]
    # The Job is suspended, so its pod goes and the kubelet stops pulling.
    assert _job(h, job)["spec"]["suspend"] is True


def test_an_invalid_image_name_fails_at_once() -> None:
    h, job = _started()
    _stuck_pod(h, job, "InvalidImageName", "couldn't parse image name")
    h.run_for(31)  # the safety-net look, well inside the grace period
    assert h.phase("week1") == "Failed"
    assert h.condition("Failed", h.wsj("week1"))["reason"] == "ImagePullFailed"


def test_a_pod_that_gets_its_image_keeps_training() -> None:
    h, job = _started()
    _stuck_pod(h, job, "ContainerCreating")
    h.run_for(PULL_GRACE_SECONDS * 3)
    assert h.phase("week1") == "Training"
    assert not _job(h, job)["spec"].get("suspend")


def test_the_grace_period_is_the_operators_setting() -> None:
    h = Harness(image_pull_grace_seconds=60.0)  # half the default
    h.create(make_lineage().obj())
    h.create(make_wsj("week1").obj())
    job = h.wsj("week1")["status"]["jobName"]
    _stuck_pod(h, job, "ErrImagePull", 'pulling image "registry.local/nope:1": refused')
    h.run_for(31)  # the safety-net look: inside the grace
    assert h.phase("week1") == "Training"
    h.run_for(30)  # past 60 s, well inside the default 120 s
    assert h.phase("week1") == "Failed"
    assert h.condition("Failed", h.wsj("week1"))["reason"] == "ImagePullFailed"
