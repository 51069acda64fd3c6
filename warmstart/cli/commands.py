"""The commands: read through ``kube``, decide and render with the pure modules, print.

Each returns its exit code; errors are raised as ``CliError`` for ``main`` to print.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from warmstart import record
from warmstart.api.constants import VersionPhase
from warmstart.cli import auditcmds, pinning
from warmstart.cli.credentials import s3_settings
from warmstart.cli.curves import render_curves_svg, series_of, write_chart
from warmstart.cli.errors import EXIT_BROKEN, EXIT_OK, CliError
from warmstart.cli.kube import ConflictError, Kube, KubeOptions
from warmstart.cli.progress import Progress
from warmstart.cli.svg import render_svg
from warmstart.cli.textgraph import render_dot, render_mermaid
from warmstart.cli.tree import render_tree
from warmstart.cli.verify import choose_start, verify_lineage
from warmstart.cli.view import LineageView, VersionView, from_object
from warmstart.storage import Storage, StorageError

GRAPH_RENDERERS: dict[str, Callable[[LineageView], str]] = {
    "mermaid": render_mermaid,
    "dot": render_dot,
    "svg": render_svg,
}
PIN_ATTEMPTS = 3


@dataclass(frozen=True)
class Console:
    out: TextIO
    err: TextIO
    prog: str
    progress: Progress

    def warn(self, message: str) -> None:
        print(f"{self.prog}: warning: {message}", file=self.err)


def _read_view(kube: Kube, name: str) -> tuple[LineageView, str | None]:
    obj = kube.get_lineage(name)
    resource_version = obj.get("metadata", {}).get("resourceVersion")
    return from_object(obj, kube.namespace), resource_version


def _fetch_view(options: KubeOptions, name: str) -> LineageView:
    kube = Kube.connect(options)
    try:
        return _read_view(kube, name)[0]
    finally:
        kube.close()


def lineage_tree(options: KubeOptions, console: Console, name: str, *, ascii_only: bool) -> int:
    console.out.write(render_tree(_fetch_view(options, name), ascii_only=ascii_only))
    return EXIT_OK


def lineage_graph(
    options: KubeOptions, console: Console, name: str, *, fmt: str, output: Path | None
) -> int:
    view = _fetch_view(options, name)
    text = GRAPH_RENDERERS[fmt](view)
    if output is None:
        console.out.write(text)
        return EXIT_OK
    try:
        if fmt == "svg":  # a picture people would rather look at: a PNG beside, as curves
            written = write_chart(text, output)
        else:
            output.write_text(text, encoding="utf-8")
            written = [output]
    except OSError as exc:
        raise CliError(f"cannot write {output}: {exc.strerror or exc}") from None
    console.progress.step(f"wrote {fmt} graph of {len(view.versions)} versions to "
                          + " and ".join(str(path) for path in written))
    return EXIT_OK


def lineage_curves(
    options: KubeOptions,
    console: Console,
    name: str,
    versions: list[str],
    *,
    output: Path | None,
    s3_endpoint: str | None,
) -> int:
    """Validation loss and accuracy against steps for ``versions``, from their manifests
    (each checked against the digest the lineage recorded for it)."""
    kube = Kube.connect(options)
    try:
        view = from_object(kube.get_lineage(name), kube.namespace)
        chosen = [view.version(version) for version in versions]
        secret = f"{kube.namespace}/{view.secret_name}"
        data = kube.read_secret_data(
            view.secret_name,
            needed_by=f"spec.storage.secretRef of ModelLineage {kube.namespace}/{name}",
        )
    finally:
        kube.close()
    store = Storage(s3_settings(data, secret=secret, endpoint_override=s3_endpoint))
    series = []
    for version in chosen:
        try:
            raw = store.read_manifest(record.ensure_prefix(version.uri))
            if version.manifest_digest:
                record.verify_manifest_digest(raw, version.manifest_digest,
                                              what=f"version {version.name}: manifest.json")
            manifest = record.parse_manifest(raw, source=f"{version.uri}manifest.json")
        except (StorageError, record.RecordError) as exc:
            raise CliError(f"version {version.name}: {exc}") from None
        one = series_of(version.name, manifest.evaluation,
                        cold_start=manifest.training_report.cold_start)
        if one.note:
            console.warn(f"{version.name} {one.note}: it learned the class prior; do not "
                         "read its comparison as a fair baseline")
        series.append(one)
    try:
        svg = render_curves_svg(series, title=f"{view.name}: {' vs '.join(versions)}")
    except ValueError as exc:
        raise CliError(str(exc)) from None
    target = output or Path(f"{view.name}-{'-'.join(versions)}-curves.svg")
    try:
        written = write_chart(svg, target)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror or exc}") from None
    for path in written:
        console.progress.step(f"wrote {path}")
    return EXIT_OK


def lineage_verify(
    options: KubeOptions,
    console: Console,
    name: str,
    version: str | None,
    *,
    manifests_only: bool,
    s3_endpoint: str | None,
) -> int:
    kube = Kube.connect(options)
    try:
        obj = kube.get_lineage(name)
        view = from_object(obj, kube.namespace)
        start = choose_start(view, version)
        secret = f"{kube.namespace}/{view.secret_name}"
        console.progress.step(f"reading credentials from Secret {secret}")
        data = kube.read_secret_data(
            view.secret_name,
            needed_by=f"spec.storage.secretRef of ModelLineage {kube.namespace}/{name}",
        )
    finally:
        kube.close()
    settings = s3_settings(data, secret=secret, endpoint_override=s3_endpoint)
    console.progress.step(
        f"verifying {view.name} from {start.name} ({start.manifest_digest}) to its base"
    )
    store = Storage(settings)
    report = verify_lineage(view, start, store, console.progress, check_files=not manifests_only)
    for warning in report.warnings:
        console.warn(warning)
    if report.broken is not None:
        print(f"{console.prog}: {report.broken.describe()}", file=console.err)
        return EXIT_BROKEN
    console.out.write(report.summary(files_checked=not manifests_only))
    return auditcmds.after_chain(console, obj, report, store)


def promote(options: KubeOptions, console: Console, name: str, version: str) -> int:
    return _pin(options, console, name, lambda view: pinning.promotion_target(view, version))


def rollback(options: KubeOptions, console: Console, name: str) -> int:
    return _pin(options, console, name, pinning.rollback_target)


def _pin(
    options: KubeOptions,
    console: Console,
    name: str,
    choose: Callable[[LineageView], VersionView],
) -> int:
    kube = Kube.connect(options)
    try:
        for attempt in range(1, PIN_ATTEMPTS + 1):
            try:
                return _pin_once(kube, console, name, choose)
            except ConflictError:
                # Someone (usually the operator) wrote the object between our read and our
                # write; read again so the checks run on what is there now.
                if attempt == PIN_ATTEMPTS:
                    raise
    finally:
        kube.close()
    raise AssertionError("unreachable: the last attempt returns or raises")


def _pin_once(
    kube: Kube, console: Console, name: str, choose: Callable[[LineageView], VersionView]
) -> int:
    view, resource_version = _read_view(kube, name)
    target = choose(view)
    what = f"ModelLineage {view.namespace}/{view.name}"
    if view.pinned == target.name:
        console.out.write(f"{what}: already pinned to {target.name}; nothing changed\n")
        return EXIT_OK
    kube.merge_patch_lineage(name, pinning.pin_patch(target.name, resource_version))
    if target.phase == VersionPhase.ROLLED_BACK:
        console.warn(f"{target.name} was rolled back before ({target.reason or 'no reason'})")
    console.out.write(
        f"{what}: spec.pinnedVersion {view.pinned or 'unset'} -> {target.name}; "
        "the operator rolls the serving Deployment to it\n"
    )
    return EXIT_OK
