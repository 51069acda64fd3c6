"""Cold starts in the CLI: marked in the tree and graphs, and verified as roots of their own
whose compared-with version chains to the base."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tests.cli.builders import LineageBuilder, make_lineage, sample_lineage
from tests.cli.records import WEIGHTS, RecordedVersion, flip_byte, index, write_chain
from warmstart import record, storage
from warmstart.cli.progress import Progress
from warmstart.cli.svg import render_svg
from warmstart.cli.textgraph import render_dot, render_mermaid
from warmstart.cli.tree import render_tree
from warmstart.cli.verify import choose_start, verify_lineage
from warmstart.storage import Storage


def test_tree_marks_a_cold_start_and_names_what_it_was_compared_with() -> None:
    view = sample_lineage().version("cold", None, phase="Candidate", compared_with="v1",
                                    accuracy=0.55).view()
    (cold,) = [line for line in render_tree(view).splitlines() if "cold" in line]
    assert "(cold start, compared with v1)" in cold
    # A root at the left margin (no parent), not under v1 as if it had started from it.
    assert cold.startswith("cold ")


def test_graphs_link_a_cold_start_to_its_comparison_without_a_parent_edge() -> None:
    view = sample_lineage().version("cold", None, phase="Candidate", compared_with="v1",
                                    accuracy=0.55).view()
    ids = {name: f"v{i}" for i, name in enumerate(view.names)}
    mermaid = render_mermaid(view)
    assert f"{ids['v1']} -. compared with .- {ids['cold']}" in mermaid
    assert f"--> {ids['cold']}" not in mermaid
    assert "cold start · vs v1" in mermaid
    dot = render_dot(view)
    assert f'{ids["v1"]} -> {ids["cold"]} [style=dotted, arrowhead=none, ' \
           'label="compared with"];' in dot
    svg = ET.fromstring(render_svg(view))
    texts = [el.text or "" for el in svg.iter() if el.tag.endswith("text")]
    assert "cold start · vs v1" in texts


def _cold_record(tmp_path: Path) -> tuple[Storage, LineageBuilder, RecordedVersion]:
    store = Storage()
    storage_uri = tmp_path.as_uri() + "/lineage/"
    versions = write_chain(store.put_bytes, storage_uri, "reviews")
    v1 = next(v for v in versions if v.name == "v1")
    prefix = record.version_uri(storage_uri, "cold")
    weights = b"random weights " * 8
    store.put_bytes(record.file_uri(prefix, WEIGHTS), weights)
    manifest = record.Manifest(
        version="cold", lineage="reviews", task=record.TASK_SEQUENCE_CLASSIFICATION,
        labels=("negative", "positive"), parent=None,
        compared_with=record.ParentRef("v1", v1.uri, v1.manifest_digest),
        files=(record.FileEntry(WEIGHTS, record.sha256_bytes(weights), len(weights)),),
        created_at="2025-01-09T00:00:00Z")
    data = manifest.to_bytes()
    store.put_bytes(record.manifest_uri(prefix), data)
    builder = index(make_lineage(storage_uri=storage_uri), versions)
    builder.base_digest(versions[0].manifest_digest)
    builder.version("cold", None, phase="Candidate", digest=record.manifest_digest(data),
                    compared_with="v1", accuracy=0.6)
    return store, builder, v1


def test_verify_walks_from_a_cold_start_through_its_comparison_to_the_base(
    tmp_path: Path,
) -> None:
    store, builder, _ = _cold_record(tmp_path)
    view = builder.view()
    report = verify_lineage(view, choose_start(view, "cold"), store, Progress(None))
    assert report.intact, report.broken
    assert [link.version for link in report.links] == ["cold", "v1", "base"]
    assert [link.cold_start for link in report.links] == [True, False, False]
    assert report.warnings == ()
    summary = report.summary(files_checked=True)
    assert summary.splitlines()[-1] == (
        "chain intact: cold ~> v1 -> base (3 versions, manifests and files)")
    assert "cold start: compared with the next" in summary.splitlines()[0]


def test_verify_of_a_cold_start_catches_an_altered_comparison(tmp_path: Path) -> None:
    store, builder, v1 = _cold_record(tmp_path)
    manifest_uri = record.manifest_uri(v1.uri)
    store.put_bytes(manifest_uri, flip_byte(store.get_bytes(manifest_uri), 3))
    view = builder.view()
    report = verify_lineage(view, choose_start(view, "cold"), store, Progress(None))
    assert report.broken is not None
    assert report.broken.version == "v1"
    assert report.broken.recorded_by == "cold's manifest (comparedWith)"
    assert report.broken.uri == storage.join(v1.uri, "manifest.json")
