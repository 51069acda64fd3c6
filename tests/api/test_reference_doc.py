"""docs/reference.md is generated from the CRDs and must not drift from them."""

from __future__ import annotations

from warmstart.api import docgen


def test_reference_doc_is_current() -> None:
    assert docgen.main(["--check"]) == 0, "run: python -m warmstart.api.docgen"


def test_reference_lists_nested_fields_with_descriptions() -> None:
    text = docgen.render(docgen.REPO / "crds")
    assert "| `spec.training.learningRate` | number |" in text
    assert "| `spec.promotion.policy` | string |" in text
    assert "`status.versions[].manifestDigest`" in text
