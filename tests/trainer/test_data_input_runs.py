"""Bad input through the real trainer: the issue's file (a broken JSON line, then non-UTF-8
bytes) and a parent without safetensors end the `train` command with exit 2, one line on
stderr and in the termination message, and no traceback (file:// storage, tiny BERT).

The command runs in this process (``support.run_cli``); that exit 2 and one line reach the
process's exit status and stderr is test_trainspec's subprocess test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.trainer.conftest import Lineage
from tests.trainer.support import publish_dir, run_cli, sentiment_rows
from warmstart import record
from warmstart.trainspec import parse_spec
from warmstart_trainer.errors import EXIT_INVALID_INPUT, InvalidInputError
from warmstart_trainer.train import run_train


def broken_file(path: Path) -> str:
    lines = [json.dumps(row).encode() for row in sentiment_rows(6, seed=1)]
    lines[3] = b'{"text": "cut off in the mid'
    lines[4] = b'{"text": "na\xefve \xff", "label": "positive"}'
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path.as_uri()


def run_train_cli(spec: dict[str, object], tmp_path: Path) -> tuple[int, str, dict[str, object]]:
    """The `train` command in this process (the process boundary itself is covered by
    test_trainspec's exit-2 test): exit code, stderr and termination message."""
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    termination = tmp_path / "termination-log"
    code, stderr = run_cli(["train", "--spec", str(spec_path)],
                           {"TERMINATION_MESSAGE_PATH": str(termination),
                            "WARMSTART_WORKDIR": str(tmp_path / "work")})
    message = json.loads(termination.read_text()) if termination.exists() else {}
    return code, stderr, message


def test_the_issues_broken_file_exits_2_naming_file_and_row(lineage: Lineage,
                                                             tmp_path: Path) -> None:
    bad = broken_file(tmp_path / "broken.jsonl")
    code, stderr, message = run_train_cli(lineage.spec().dataset(trainURI=bad).obj(), tmp_path)
    assert code == EXIT_INVALID_INPUT, stderr
    assert "Traceback" not in stderr, stderr
    assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
        f"error: {message['error']}"]
    assert f"{bad}: row 5: not UTF-8 text" in stderr  # the bytes come first
    assert message["exitCode"] == EXIT_INVALID_INPUT
    assert str(message["error"]).startswith(f"{bad}: row 5: not UTF-8 text")


def test_broken_json_alone_names_its_row(lineage: Lineage, tmp_path: Path) -> None:
    bad_path = tmp_path / "cut.jsonl"
    broken_file(bad_path)
    bad_path.write_bytes(bad_path.read_bytes().replace(b"\xef", b"i").replace(b" \xff", b""))
    code, stderr, message = run_train_cli(
        lineage.spec().dataset(trainURI=bad_path.as_uri()).obj(), tmp_path)
    assert code == EXIT_INVALID_INPUT, stderr
    assert "Traceback" not in stderr, stderr
    assert "cut.jsonl: row 4: not valid JSON: Unterminated string" in str(message["error"])


def test_a_parent_without_safetensors_is_invalid_input(lineage: Lineage,
                                                       tmp_path: Path) -> None:
    # publish-base refuses such a directory, so the manifest is edited after publishing:
    # a committed version whose files simply hold no weights.
    uri = f"{lineage.storage_uri}weightless/"
    publish_dir(lineage.store, lineage.base_dir, uri)
    folder = Path(uri.removeprefix("file://"))
    manifest = json.loads((folder / "manifest.json").read_bytes())
    manifest["files"] = [f for f in manifest["files"]
                         if not f["name"].endswith(".safetensors")]
    for weights in folder.glob("*.safetensors"):
        weights.unlink()
    data = json.dumps(manifest).encode()
    (folder / "manifest.json").write_bytes(data)
    digest = record.manifest_digest(data)
    spec = lineage.spec().obj()
    spec["parent"] = {"uri": uri, "manifestDigest": digest, "version": "weightless"}
    with pytest.raises(InvalidInputError, match=r"parent .* no \.safetensors weights"):
        run_train(parse_spec(spec), lineage.store, tmp_path / "work",
                  device=torch.device("cpu"))
