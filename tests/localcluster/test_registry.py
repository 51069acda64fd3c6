"""The local image registry's names and storage checks (no registry process needed).

Pushing and pulling through it are exercised by the opt-in real-node tests."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from warmstart_localcluster.node import containerd, registry


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WARMSTART_CACHE", str(tmp_path))
    return tmp_path


def tag_link(cache: Path, path: str, tag: str) -> Path:
    return (cache / "registry/docker/registry/v2/repositories" / path / "_manifests/tags" / tag
            / "current/link")


@pytest.mark.parametrize(("ref", "expected"), [
    ("localhost/warmstart/trainer:dev", ("warmstart/trainer", "dev")),
    ("localhost/warmstart/operator:1.2.3", ("warmstart/operator", "1.2.3")),
    ("localhost/a/b/c:x", ("a/b/c", "x")),
])
def test_repository_drops_the_registry_host_and_splits_the_tag(
        ref: str, expected: tuple[str, str]) -> None:
    assert registry.repository(ref) == expected


def test_an_image_counts_as_pushed_only_when_its_tag_is_in_the_storage(cache: Path) -> None:
    assert registry.pushed() == []
    assert not registry.has("localhost/warmstart/trainer:dev")
    link = tag_link(cache, "warmstart/trainer", "dev")
    link.parent.mkdir(parents=True)
    link.write_text("sha256:" + "0" * 64)
    assert registry.has("localhost/warmstart/trainer:dev")
    assert not registry.has("localhost/warmstart/trainer:other")
    assert registry.pushed() == ["localhost/warmstart/trainer:dev"]


def test_the_config_serves_the_cached_storage_on_loopback_only(cache: Path,
                                                                tmp_path: Path) -> None:
    text = registry.write_config(tmp_path / "registry.yml", 5123).read_text()
    assert "addr: 127.0.0.1:5123\n" in text
    assert f"rootdirectory: {cache / 'registry'}\n" in text


def test_containerd_resolves_localhost_names_to_the_registry_over_plain_http(
        tmp_path: Path) -> None:
    hosts = registry.write_hosts(tmp_path / "certs.d", "127.0.0.1:5123")
    parsed = tomllib.loads((hosts / "localhost" / "hosts.toml").read_text())
    assert parsed["server"] == "http://127.0.0.1:5123"
    assert parsed["host"]["http://127.0.0.1:5123"]["capabilities"] == ["pull", "resolve"]


def test_the_node_drops_id_records_of_images_no_tag_points_at_any_more() -> None:
    listing = (
        "REF TYPE DIGEST SIZE PLATFORMS LABELS\n"
        "localhost/warmstart/trainer:dev application/vnd.oci.image.manifest.v1+json "
        "sha256:new 6.0 GiB linux/amd64 -\n"
        "sha256:cfg-new application/vnd.oci.image.manifest.v1+json sha256:new 6.0 GiB "
        "linux/amd64 io.cri-containerd.image=managed\n"
        "sha256:cfg-old application/vnd.oci.image.manifest.v1+json sha256:old 6.0 GiB "
        "linux/amd64 io.cri-containerd.image=managed\n"
        "localhost/warmstart/pause:v1 application/vnd.docker.distribution.manifest.v2+json "
        "sha256:pause 700 KiB linux/amd64 -\n"
    )
    assert containerd.untagged_images(listing) == ["sha256:cfg-old"]
    assert containerd.untagged_images(listing.splitlines()[0]) == []
