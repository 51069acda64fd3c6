"""The README's Serving section, run against a real server: its curl commands, verbatim but
for the address and model name, and its tritonclient snippet."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests import readme
from tests.server.support import MODEL, RunningServer

README_ADDRESS = "127.0.0.1:8080"
README_MODEL = "reviews-classifier"


def python_block(section: str) -> str:
    text = readme.README.read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", body, flags=re.DOTALL)
    return str(block)


def test_serving_section_curl_commands(server: RunningServer, tmp_path: Path) -> None:
    (ran,) = readme.run_section(
        "Serving", {}, tmp_path, one_shell=True, timeout=120,
        fill={README_ADDRESS: server.url, README_MODEL: MODEL})
    # Three JSON documents, one per curl: ready, model metadata, an inference answer.
    decoder, documents, text = json.JSONDecoder(), [], ran.stdout.strip()
    while text:
        document, end = decoder.raw_decode(text)
        documents.append(document)
        text = text[end:].strip()
    ready, metadata, answer = documents
    assert ready == {"ready": True}
    assert metadata["name"] == MODEL
    labels = {o["name"]: o for o in answer["outputs"]}["label"]
    assert labels["shape"] == [2] and len(labels["data"]) == 2


def test_serving_section_tritonclient_snippet(server: RunningServer, tmp_path: Path) -> None:
    code = python_block("Serving").replace(README_ADDRESS, server.url)
    code = code.replace(README_MODEL, MODEL)
    script = tmp_path / "snippet.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, check=False, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert re.search(r"\[b'(negative|positive)' b'(negative|positive)'\]", done.stdout), done.stdout
