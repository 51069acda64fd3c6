"""The audit commands: `lineage provenance`, `lineage history`, and the signature and
history checks `lineage verify` runs once the hash chain holds (``audit`` renders)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from warmstart import provenance, signing
from warmstart.cli import audit
from warmstart.cli.credentials import s3_settings
from warmstart.cli.errors import EXIT_BROKEN, EXIT_OK
from warmstart.cli.kube import Kube, KubeOptions
from warmstart.storage import Storage

if TYPE_CHECKING:
    from warmstart.cli.commands import Console
    from warmstart.cli.verify import VerifyReport


def open_lineage(
    options: KubeOptions, console: Console, name: str, s3_endpoint: str | None
) -> tuple[dict[str, Any], Storage]:
    """The ModelLineage object and its storage, reached with its own Secret."""
    kube = Kube.connect(options)
    try:
        obj = kube.get_lineage(name)
        secret_name = obj.get("spec", {}).get("storage", {}).get("secretRef", {}).get("name", "")
        secret = f"{kube.namespace}/{secret_name}"
        console.progress.step(f"reading credentials from Secret {secret}")
        data = kube.read_secret_data(
            secret_name,
            needed_by=f"spec.storage.secretRef of ModelLineage {kube.namespace}/{name}",
        )
    finally:
        kube.close()
    return obj, Storage(s3_settings(data, secret=secret, endpoint_override=s3_endpoint))


def after_chain(console: Console, obj: dict[str, Any], report: VerifyReport, store: Storage) -> int:
    """Signatures of every version of the verified chain, then the serving history."""
    lineage = audit.lineage_of(obj)
    code = EXIT_OK
    trusted = audit.trusted_keys_of(lineage)
    if trusted is None:
        console.progress.step(audit.NOT_SIGNING)
    else:
        console.progress.step(f"checking signatures with {len(trusted)} trusted keys")
        rows = audit.check_signatures(store, audit.chain_versions(report.links), trusted)
        text, ok = audit.render_signatures(rows)
        (console.out if ok else console.err).write(text)
        code = EXIT_OK if ok else EXIT_BROKEN
    history_text, history_code, refusal = audit.history_report(store, lineage, None)
    if refusal:
        print(f"{console.prog}: {refusal}", file=console.err)
        return EXIT_BROKEN
    if "history intact" in history_text:  # nothing to say about an empty log
        console.out.write(history_text.splitlines()[-1] + "\n")
    return max(code, history_code)


def lineage_provenance(
    options: KubeOptions, console: Console, name: str, version: str, s3_endpoint: str | None
) -> int:
    obj, store = open_lineage(options, console, name, s3_endpoint)
    lineage = audit.lineage_of(obj)
    uri, digest = audit.manifest_digest_of(lineage, version)
    try:
        opened = audit.read_provenance(store, lineage, version, uri, digest)
    except provenance.ProvenanceError as exc:
        print(f"{console.prog}: provenance of {version} refused: {exc}", file=console.err)
        return EXIT_BROKEN
    except signing.SigningConfigError as exc:
        print(f"{console.prog}: {exc}", file=console.err)
        return EXIT_BROKEN
    console.out.write(audit.provenance_json(opened))
    console.progress.step(audit.provenance_verdict(opened, version))
    return EXIT_OK


def lineage_history(
    options: KubeOptions,
    console: Console,
    name: str,
    at: dt.datetime | None,
    s3_endpoint: str | None,
) -> int:
    obj, store = open_lineage(options, console, name, s3_endpoint)
    text, code, refusal = audit.history_report(store, audit.lineage_of(obj), at)
    if refusal:
        print(f"{console.prog}: {refusal}", file=console.err)
    console.out.write(text)
    return code
