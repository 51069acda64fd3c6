"""The command line without a cluster: argument errors and "no cluster" errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from warmstart.cli.main import main, program_name


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_graph_requires_a_known_format(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["lineage", "graph", "reviews", "--format", "png"])

    assert exited.value.code == 2
    assert "invalid choice: 'png'" in capsys.readouterr().err


def test_missing_kubeconfig_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["lineage", "tree", "reviews", "--kubeconfig", str(tmp_path / "nope")])

    assert code == 2
    assert _one_error_line(capsys) == (
        f"warmstart: error: kubeconfig {tmp_path / 'nope'} does not exist"
    )


def test_no_kubeconfig_anywhere_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))

    code = main(["rollback", "reviews"])

    assert code == 2
    assert _one_error_line(capsys).startswith(
        "warmstart: error: no cluster configured: no kubeconfig file found"
    )


def test_refused_connection_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = f"https://127.0.0.1:{_closed_port()}"
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))

    code = main(["lineage", "verify", "reviews", "-q"])

    assert code == 2
    line = _one_error_line(capsys)
    assert line.startswith(f"warmstart: error: cannot reach the Kubernetes API server at {server}")
    assert "Connection refused" in line


def test_unknown_context_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "contexts": []}))

    code = main(["promote", "reviews", "v1", "--kubeconfig", str(kubeconfig), "--context", "gone"])

    assert code == 2
    assert _one_error_line(capsys).startswith("warmstart: error: kubeconfig: ")


def test_program_name_follows_the_kubectl_plugin_convention() -> None:
    assert program_name("/usr/local/bin/kubectl-warmstart") == "kubectl warmstart"
    assert program_name("warmstart") == "warmstart"
