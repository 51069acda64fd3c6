"""The six steps of the demo's story, each applying example manifests and showing what the
operator does with them."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warmstart.api.constants import JobPhase
from warmstart.cli.kube import Kube, pod_ready, wait_until
from warmstart.demo import manifests as m
from warmstart.demo import setup, workloads
from warmstart.demo.compare import RunResult, comparison
from warmstart.demo.console import Console, table
from warmstart.demo.errors import DemoError
from warmstart.demo.plan import Plan
from warmstart.demo.watch import MODEL_VERSION_ANNOTATION, JobWatcher, wait_for_serving
from warmstart.storage import Storage, StorageError

SERVER_SELECTOR = f"app={m.DEPLOYMENT}"
MODEL_NAME = m.DEPLOYMENT  # --model-name in examples/serving/deployment.yaml
# Long enough for the full windows on a busy 2-core machine; a stuck run still ends.
JOB_TIMEOUT = 1800
REPLAY_AFTER_WEEK1 = ("week0/eval.jsonl", "week1/eval.jsonl")
# The file the tamper step edits: small, and an edit an attacker would want (labels swapped).
TAMPERED_FILE = "config.json"
# Starting the server (torch import, 90 MB download and hashing) on a busy 2-core machine.
SERVER_REFUSAL_TIMEOUT = 600


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
    signing_key: Path = field(default_factory=setup.signing_key_file)
    # On a real node (kubelet): the images built here, and predictions through the Service.
    _replays: Sequence[str] | None = None

    # -- helpers ---------------------------------------------------------------------------

    def _apply(self, example: m.ExampleFile, doc: dict[str, Any], note: str = "") -> None:
        self.console.command(f"kubectl apply -n {self.kube.namespace} -f {example.shown_path}"
                             + (f"   # {note}" if note else ""))
        self.kube.apply([doc])

    def _lineage_doc(self, pinned: str | None = None) -> dict[str, Any]:
        return m.lineage_for_demo(m.load(m.LINEAGE_EXAMPLE), replay_keys=self._replays,
                                  pinned=pinned, promotion=self.plan.promotion,
                                  signing_key=setup.signing_public_key(self.signing_key))

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

    def _deployment_doc(self) -> dict[str, Any]:
        doc = m.load(m.DEPLOYMENT_EXAMPLE)
        return workloads.serving_deployment(doc)

    def _show_prediction(self) -> None:
        # From a pod, through the Service's DNS name, as a client in the cluster would.
        self.console.command(f"kubectl run {workloads.PREDICT_POD} --image="
                             f"{workloads.TRAINER_IMAGE} --restart=Never -- python -c "
                             "'<POST {\"inputs\": [{\"name\": \"text\", ...}]} to "
                             f"{workloads.service_url(self.kube.namespace, MODEL_NAME)}>'")
        version, predictions = workloads.predict_via_service(self.kube, MODEL_NAME)
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
        self.console.command(f"kubectl create secret generic {m.SIGNING_SECRET} -n "
                             f"{self.kube.namespace} --from-file=signing.key")
        self.kube.apply([m.signing_secret(self.signing_key.read_text(encoding="ascii"))])
        if self.plan.promotion:
            note = ", ".join(f"{k} {v}" for k, v in self.plan.promotion.items())
            self.console.say(f"(--quick trains tiny models: the gate's bars are lowered: {note})")
        self._apply(m.LINEAGE_EXAMPLE, self._lineage_doc(), "weekly schedule suspended: the demo "
                    "plays the weeks; signing.trustedKeys: the demo's public key")
        deployment = self._deployment_doc()
        self._apply(m.DEPLOYMENT_EXAMPLE, deployment,
                    f"image {workloads.TRAINER_IMAGE}, built here")
        self.console.command(f"kubectl expose deployment {m.DEPLOYMENT} -n "
                             f"{self.kube.namespace} --port {workloads.SERVICE_PORT} "
                             "--target-port http")
        self.kube.apply([workloads.service(deployment)])
        base = wait_until("the base version in the lineage's status",
                          lambda: self._maybe_version("base"), timeout=120)
        self.console.say(f"the operator registered version 0: base ({base['manifestDigest']}), "
                         "its signature verified")
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
        wait_for_serving(self.kube, self.console, m.LINEAGE, SERVER_SELECTOR, m.WEEK1)
        self._show_prediction()

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
        wait_for_serving(self.kube, self.console, m.LINEAGE, SERVER_SELECTOR, m.WEEK1)
        status = self.kube.get_lineage(m.LINEAGE).get("status") or {}
        self.console.say(f"serving {status.get('servingVersion')} (previous: "
                         f"{status.get('previousVersion')}); {m.WEEK2} stays recorded")
        self._show_prediction()

    def lineage_record(self, cli: Sequence[str]) -> None:
        self.console.title("6. The lineage: tree, hash chain and signatures, graph, curves")
        self._cli(cli, ["lineage", "tree", m.LINEAGE])
        self._cli(cli, ["lineage", "verify", m.LINEAGE, m.WEEK2])
        self.output_dir.mkdir(parents=True, exist_ok=True)
        svg = self.output_dir / f"{m.LINEAGE}.svg"
        self._cli(cli, ["lineage", "graph", m.LINEAGE, "--format", "svg", "-o", str(svg)])
        self.results["svg"] = str(svg)
        self.results["png"] = str(svg.with_suffix(".png"))  # the command writes it beside
        self.console.say(f"lineage graph: {svg} and {self.results['png']}")
        # Week 2's learning curves, warm beside cold, from what each manifest recorded.
        curves = self.output_dir / "week2-curves.svg"
        self._cli(cli, ["lineage", "curves", m.LINEAGE, m.WEEK2, m.WEEK2_COLD,
                        "-o", str(curves)])
        self.results["curves"] = str(curves)
        self.console.say(f"learning curves of week 2, warm beside cold: {curves}")
        self.tampering(cli)

    def tampering(self, cli: Sequence[str]) -> None:
        """Edit one file of a signed version in the bucket, as anyone with write access
        could: `lineage verify` and the model server refuse it; then put it back."""
        self.console.title(f"7. Tampering: one file of {m.WEEK2} edited in the bucket")
        version = self._version(m.WEEK2)
        file_uri = version["uri"] + TAMPERED_FILE
        try:
            original = self.store.get_bytes(file_uri)
            self.console.command(f"aws s3 cp {TAMPERED_FILE} {file_uri}   # id2label swapped")
            self.store.put_bytes(file_uri, swapped_labels(original))
        except StorageError as exc:
            raise DemoError(str(exc)) from None
        try:
            code, _, err = self._run_cli(cli, ["lineage", "verify", m.LINEAGE, m.WEEK2])
            if code == 0:
                raise DemoError(f"lineage verify accepted {m.WEEK2} with {TAMPERED_FILE} edited")
            # The verdict is its last line; the lines before it are progress.
            self.console.detail(err.strip().splitlines()[-1] if err.strip() else "")
            self.console.say(f"verify refuses it (exit {code}); now the model server:")
            reason = self._server_refusal(version)
            self.results["tamper"] = {"file": file_uri, "verifyExit": code, "server": reason}
        finally:
            try:
                self.store.put_bytes(file_uri, original)
            except StorageError as exc:
                raise DemoError(f"could not restore {file_uri}: {exc}") from None
        self.console.say(f"{TAMPERED_FILE} restored from the demo's copy; verify passes again:")
        self._cli(cli, ["lineage", "verify", m.LINEAGE, m.WEEK2])

    def _server_refusal(self, version: dict[str, Any]) -> str:
        """Start the serving Deployment's pod template on the tampered version (with the
        variables the lineage sets, trusted keys included) and wait for its refusal."""
        live = self.kube.deployment(m.DEPLOYMENT)
        env = {e.name: e.value for e in live.spec.template.spec.containers[0].env or []
               if e.name.startswith("WARMSTART_") and e.value is not None} if live else {}
        env |= {"WARMSTART_MODEL_URI": version["uri"],
                "WARMSTART_MODEL_DIGEST": version["manifestDigest"]}
        pod_doc = m.tamper_check_pod(self._deployment_doc(), env)
        self._apply(m.DEPLOYMENT_EXAMPLE, pod_doc,
                    f"as Pod {m.TAMPER_CHECK_POD}, WARMSTART_MODEL_URI=.../{m.WEEK2}/")
        try:
            reason = wait_until(f"pod {m.TAMPER_CHECK_POD} to refuse {m.WEEK2}",
                                self._refusal_reason, timeout=SERVER_REFUSAL_TIMEOUT, interval=2)
        finally:
            self.kube.kubectl("delete", "pod", m.TAMPER_CHECK_POD, "-n", self.kube.namespace,
                              "--wait=false", "--ignore-not-found")
        self.console.command(f"curl -s http://POD_IP:8080/v2/health/ready   # pod "
                             f"{m.TAMPER_CHECK_POD}: 0/1 ready")
        self.console.detail(f"503 {json.dumps({'ready': False, 'reason': reason})}")
        self.console.say("the server never reports ready, so no traffic reaches the tampered "
                         "version; the pod is deleted")
        return reason

    def _refusal_reason(self) -> str | None:
        pods = self.kube.pods(f"app={m.TAMPER_CHECK_POD}")
        ip = pods[0].status.pod_ip if pods and pods[0].status else None
        if not ip:
            return None
        if pod_ready(pods[0]):
            raise DemoError(f"the model server reported ready on tampered {m.WEEK2}")
        try:
            with urllib.request.urlopen(
                    f"http://{ip}:8080/v2/health/ready", timeout=10) as resp:
                raise DemoError(f"the model server answered {resp.status} ready on tampered "
                                f"{m.WEEK2}")
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError):
            return None  # not listening yet
        reason = str(body.get("reason") or "")
        # "loading" and a storage retry are not the verdict yet.
        return None if reason in ("", "loading") or reason.startswith("storage") else reason

    def _run_cli(self, cli: Sequence[str], args: list[str]) -> tuple[int, str, str]:
        self.console.command(f"warmstart {' '.join(args)} -n {self.kube.namespace}")
        done = subprocess.run([*cli, *args, "-n", self.kube.namespace,
                               "--kubeconfig", self.kube.kubeconfig],
                              capture_output=True, text=True, timeout=300, check=False)
        for line in done.stdout.rstrip().splitlines():
            self.console.detail(line)
        return done.returncode, done.stdout, done.stderr

    def _cli(self, cli: Sequence[str], args: list[str]) -> None:
        code, _, err = self._run_cli(cli, args)
        if code != 0:
            raise DemoError(f"warmstart {' '.join(args)} failed ({code}):\n{err.strip()}")
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


def swapped_labels(config: bytes) -> bytes:
    """The checkpoint's config.json with its two label names swapped in place (id2label and
    label2id alike): still valid JSON of the same size, so only the digest can tell."""
    names = [str(v) for v in (json.loads(config).get("id2label") or {}).values()]
    if len(names) < 2:
        return config.rstrip() + b"\n\n"  # no labels to swap: any edit will do
    first, second = (json.dumps(n).encode("utf-8") for n in names[:2])
    marker = b'"\x00warmstart-demo\x00"'
    return config.replace(first, marker).replace(second, first).replace(marker, second)


def cli_command() -> list[str]:
    """The `warmstart` CLI of this environment (the entry point beside this Python)."""
    beside = Path(sys.executable).parent / "warmstart"
    if not beside.is_file():
        raise DemoError(f"{beside}: the warmstart CLI is not installed beside this Python")
    return [str(beside)]
