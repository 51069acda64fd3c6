"""The demo's WARMSTART_DEMO_OPERATOR=process mode: the operator runs as a local process
from the working tree for the demo's namespace (its metrics endpoint answering), and the
next run stops it."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest

from tests.conftest import LocalCluster
from tests.operator.conftest import crds  # noqa: F401 - the operator needs its CRDs
from warmstart.cli.kube import Kube, KubeOptions
from warmstart.demo import install
from warmstart.demo.console import Console

pytestmark = pytest.mark.cluster


@pytest.mark.usefixtures("crds")
def test_the_operator_runs_as_a_process_until_the_next_run_stops_it(
    cluster: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace = f"demo-process-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", namespace)
    monkeypatch.setenv(install.MODE_ENV, "process")
    kube = Kube.connect(KubeOptions(kubeconfig=str(cluster.kubeconfig), namespace=namespace),
                        kubectl_path=cluster.info.kubectl)
    state = (tmp_path / "state").resolve()
    out = io.StringIO()
    try:
        install.install_operator(kube, state, cluster.info.helm, Console(out=out))
        pid = int((state / "demo" / "operator.pid").read_text())
        assert install._is_our_operator(pid, state)
        log = Path(install.log_hint(state))
        assert log == state / "logs" / f"{install.OPERATOR_NAME}.log" and log.is_file()
        assert f"operator running (pid {pid})" in out.getvalue()
    finally:
        stopped = install.stop_previous(state)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    assert stopped
    assert not install._is_our_operator(pid, state)
