"""The six steps of the demo's story, each applying example manifests and showing what the
operator does with them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmstart.api.constants import JobPhase
from warmstart.cli.kube import Kube, wait_until
from warmstart.demo import manifests as m
from warmstart.demo.compare import RunResult, comparison
from warmstart.demo.console import Console, table
from warmstart.demo.errors import DemoError
from warmstart.demo.plan import Plan
from warmstart.demo.predict import predict
from warmstart.demo.watch import MODEL_VERSION_ANNOTATION, JobWatcher, wait_for_serving
from warmstart.storage import Storage, StorageError

SERVER_SELECTOR = f"app={m.DEPLOYMENT}"
MODEL_NAME = m.DEPLOYMENT  # --model-name in examples/serving/deployment.yaml
# Long enough for the full windows on a busy 2-core machine; a stuck run still ends.
JOB_TIMEOUT = 1800
REPLAY_AFTER_WEEK1 = ("week0/eval.jsonl", "week1/eval.jsonl")


@dataclass
class Story:
    kube: Kube
    console: Console
    watcher: JobWatcher
    store: Storage
    plan: Plan
    s3_env: dict[str, str]
    output_dir: Path
    results: dict[str, Any] = field(default_factory=dict)
    _replays: Sequence[str] | None = None

    # -- helpers ---------------------------------------------------------------------------

    def _apply(self, example: m.ExampleFile, doc: dict[str, Any], note: str = "") -> None:
        self.console.command(f"kubectl apply -n {self.kube.namespace} -f {example.shown_path}"
                             + (f"   # {note}" if note else ""))
        self.kube.apply([doc])

    def _lineage_doc(self, pinned: str | None = None) -> dict[str, Any]:
        return m.lineage_for_demo(m.load(m.LINEAGE_EXAMPLE), replay_keys=self._replays,
                                  pinned=pinned, promotion=self.plan.promotion)

    def _job_doc(self, name: str) -> dict[str, Any]:
        return m.job_for_demo(m.load(m.JOB_EXAMPLES[name]), self.plan.training.get(name))

    def _maybe_version(self, name: str) -> dict[str, Any] | None:
        status = self.kube.get_lineage(m.LINEAGE).get("status") or {}
        found = [v for v in status.get("versions") or [] if v.get("name") == name]
        return dict(found[0]) if found else None

    def _version(self, name: str) -> dict[str, Any]:
        found = self._maybe_version(name)
        if found is None:
            raise DemoError(f"version {name} is not in the lineage's status")
        return found

    def _show_prediction(self, pod: Any) -> None:
        ip = pod.status.pod_ip
        self.console.command(f"curl -s http://{ip}:8080/v2/models/{MODEL_NAME}/infer "
                             "-d '{\"inputs\": [{\"name\": \"text\", ...}]}'")
        version, predictions = predict(ip, MODEL_NAME)
        for p in predictions:
            self.console.detail(f"{p.label:>8} ({p.confidence:.2f})  \"{p.text}\"")
        self.console.say(f"answered by model version {version}")
        self.results.setdefault("predictions", {})[version] = [p.label for p in predictions]

    def _expect(self, wsj: dict[str, Any], *phases: JobPhase) -> None:
        got = (wsj.get("status") or {}).get("phase")
        if got not in phases:
            conditions = (wsj.get("status") or {}).get("conditions")
            raise DemoError(f"WarmStartJob {wsj['metadata']['name']} ended {got}, the story "
                            f"expected {' or '.join(phases)}; conditions: "
                            f"{json.dumps(conditions)}")

    # -- the steps -------------------------------------------------------------------------

    def lineage_and_serving(self) -> None:
        self.console.title("1. A ModelLineage and its serving Deployment")
        self._apply(m.SECRET_EXAMPLE, m.secret_with(m.load(m.SECRET_EXAMPLE), self.s3_env),
                    "values replaced by the local S3 credentials (not shown)")
        if self.plan.promotion:
            note = ", ".join(f"{k} {v}" for k, v in self.plan.promotion.items())
            self.console.say(f"(--quick trains tiny models: the gate's bars are lowered: {note})")
        self._apply(m.LINEAGE_EXAMPLE, self._lineage_doc(), "weekly schedule suspended: the demo "
                    "plays the weeks")
        self._apply(m.DEPLOYMENT_EXAMPLE, m.load(m.DEPLOYMENT_EXAMPLE))
        base = wait_until("the base version in the lineage's status",
                          lambda: self._maybe_version("base"), timeout=120)
        self.console.say(f"the operator registered version 0: base ({base['manifestDigest']})")
        promotion = self._lineage_doc()["spec"]["promotion"]
        self.console.say("promotion gate: " + ", ".join(
            f"{k} {v}" for k, v in promotion.items()))
        self.console.say("the server pod waits, not ready, until a version is promoted")

    def week1(self) -> None:
        self.console.title("2. Week 1: warm start from the pretrained base")
        self._apply(m.JOB_EXAMPLES[m.WEEK1], self._job_doc(m.WEEK1))
        wsj = self.watcher.follow([m.WEEK1], JOB_TIMEOUT)[m.WEEK1]
        self._expect(wsj, JobPhase.SUCCEEDED)
        version = self._version(m.WEEK1)
        self.console.say(f"version {m.WEEK1}: {version['phase']} ({version.get('reason')})")
        pod = wait_for_serving(self.kube, self.console, m.LINEAGE, SERVER_SELECTOR, m.WEEK1)
        self._show_prediction(pod)

    def week2(self) -> None:
        self.console.title("3. Week 2: warm start from serving, beside a cold-start baseline")
        self._replays = REPLAY_AFTER_WEEK1
        self._apply(m.LINEAGE_EXAMPLE, self._lineage_doc(),
                    "week 1's eval set added to evaluation.replayURIs")
        self._apply(m.JOB_EXAMPLES[m.WEEK2], self._job_doc(m.WEEK2))
        self._apply(m.JOB_EXAMPLES[m.WEEK2_COLD], self._job_doc(m.WEEK2_COLD))
        final = self.watcher.follow([m.WEEK2, m.WEEK2_COLD], 2 * JOB_TIMEOUT)
        self._expect(final[m.WEEK2], JobPhase.SUCCEEDED)
        # The baseline goes through the gate like any run: worse than what serves, it is
        # recorded as Rejected; either way promotion: Never keeps it from serving.
        self._expect(final[m.WEEK2_COLD], JobPhase.SUCCEEDED, JobPhase.REJECTED)
        runs = [RunResult.from_objects(final[n], self._manifest_training(final[n]))
                for n in (m.WEEK2, m.WEEK2_COLD)]
        self.console.blank()
        for line in comparison(runs[0], runs[1], "week-1 replay"):
            self.console.detail(line)
        self.console.blank()
        self.results["comparison"] = [r.__dict__ for r in runs]
        cold = self._version(m.WEEK2_COLD)
        self.console.say(f"version {m.WEEK2_COLD}: {cold['phase']} ({cold.get('reason')}); "
                         "promotion: Never keeps it out of serving either way")
        wait_for_serving(self.kube, self.console, m.LINEAGE, SERVER_SELECTOR, m.WEEK2)
        self.console.say(f"version {m.WEEK2}: {self._version(m.WEEK2)['phase']}, serving")

    def _manifest_training(self, wsj: dict[str, Any]) -> dict[str, Any]:
        uri = ((wsj.get("status") or {}).get("output") or {}).get("uri")
        if not uri:
            return {}
        try:
            manifest = json.loads(self.store.read_manifest(uri))
        except (StorageError, ValueError):
            return {}
        training: dict[str, Any] = manifest.get("training") or {}
        return training

    def mislabelled(self) -> None:
        self.console.title("4. Week 3: a delivery with swapped labels is rejected")
        before = self._deployment_version()
        self._apply(m.JOB_EXAMPLES[m.MISLABELLED], self._job_doc(m.MISLABELLED))
        wsj = self.watcher.follow([m.MISLABELLED], JOB_TIMEOUT)[m.MISLABELLED]
        self._expect(wsj, JobPhase.REJECTED)
        version = self._version(m.MISLABELLED)
        self.console.say(f"version {m.MISLABELLED}: {version['phase']}")
        self.console.detail(str(version.get("reason")))
        after = self._deployment_version()
        serving = (self.kube.get_lineage(m.LINEAGE).get("status") or {}).get("servingVersion")
        if after != before or serving != m.WEEK2:
            raise DemoError(f"serving changed after a rejection: Deployment {before} -> "
                            f"{after}, lineage serves {serving}")
        self.console.say(f"serving untouched: the Deployment still runs {after}")

    def _deployment_version(self) -> str | None:
        dep = self.kube.deployment(m.DEPLOYMENT)
        if dep is None:
            return None
        annotations = dep.spec.template.metadata.annotations or {}
        return annotations.get(MODEL_VERSION_ANNOTATION)

    def rollback(self) -> None:
        self.console.title("5. Rollback, GitOps style: pin week 1 in the lineage manifest")
        self.console.say(f"a commit adds `pinnedVersion: {m.WEEK1}` to "
                         f"{m.LINEAGE_EXAMPLE.shown_path}; the GitOps tool applies it:")
        self._apply(m.LINEAGE_EXAMPLE, self._lineage_doc(pinned=m.WEEK1),
                    f"+ pinnedVersion: {m.WEEK1}")
        pod = wait_for_serving(self.kube, self.console, m.LINEAGE, SERVER_SELECTOR, m.WEEK1)
        status = self.kube.get_lineage(m.LINEAGE).get("status") or {}
        self.console.say(f"serving {status.get('servingVersion')} (previous: "
                         f"{status.get('previousVersion')}); {m.WEEK2} stays recorded")
        self._show_prediction(pod)

    def lineage_record(self, cli: Sequence[str]) -> None:
        self.console.title("6. The lineage: tree, hash chain, graph")
        self._cli(cli, ["lineage", "tree", m.LINEAGE])
        self._cli(cli, ["lineage", "verify", m.LINEAGE, m.WEEK2])
        self.output_dir.mkdir(parents=True, exist_ok=True)
        svg = self.output_dir / f"{m.LINEAGE}.svg"
        self._cli(cli, ["lineage", "graph", m.LINEAGE, "--format", "svg", "-o", str(svg)])
        self.results["svg"] = str(svg)
        converter = shutil.which("rsvg-convert")
        if converter:
            png = svg.with_suffix(".png")
            subprocess.run([converter, "-o", str(png), str(svg)], check=False, timeout=60)
            if png.is_file():
                self.results["png"] = str(png)
        self.console.say(f"lineage graph: {svg}"
                         + (f" (and {self.results['png']})" if "png" in self.results else ""))

    def _cli(self, cli: Sequence[str], args: list[str]) -> None:
        self.console.command(f"warmstart {' '.join(args)} -n {self.kube.namespace}")
        done = subprocess.run([*cli, *args, "-n", self.kube.namespace,
                               "--kubeconfig", self.kube.kubeconfig],
                              capture_output=True, text=True, timeout=300, check=False)
        for line in done.stdout.rstrip().splitlines():
            self.console.detail(line)
        if done.returncode != 0:
            raise DemoError(f"warmstart {' '.join(args)} failed ({done.returncode}):\n"
                            f"{done.stderr.strip()}")
        if args[:2] == ["lineage", "verify"]:
            self.results["verified"] = True

    def summary(self) -> list[str]:
        status = self.kube.get_lineage(m.LINEAGE).get("status") or {}
        rows = []
        for v in status.get("versions") or []:
            accuracy = (v.get("metrics") or {}).get("accuracy")
            rows.append([v.get("name", ""), v.get("parent") or "-", v.get("phase", ""),
                         "-" if accuracy is None else f"{accuracy:.3f}"])
        self.results["versions"] = {v.get("name"): v.get("phase")
                                    for v in status.get("versions") or []}
        self.results["servingVersion"] = status.get("servingVersion")
        spec = self.kube.get_lineage(m.LINEAGE)["spec"]
        self.results["pinnedVersion"] = spec.get("pinnedVersion")
        return table(["version", "parent", "phase", "holdout accuracy"], rows)


def cli_command() -> list[str]:
    """The `warmstart` CLI of this environment (the entry point beside this Python)."""
    beside = Path(sys.executable).parent / "warmstart"
    if not beside.is_file():
        raise DemoError(f"{beside}: the warmstart CLI is not installed beside this Python")
    return [str(beside)]
