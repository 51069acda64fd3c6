"""Writes docs/reference.md, the field reference, from the generated CRDs' descriptions.

    python -m warmstart.api.docgen [--out docs/reference.md] [--check]

The CRDs are generated from the API models, so models, CRDs, `kubectl explain` and this
page all say the same thing; a test fails when the committed page drifts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CRDS = ("warmstart.dev_modellineages.yaml", "warmstart.dev_warmstartjobs.yaml")


def _type(schema: dict[str, Any]) -> str:
    if schema.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    kind = str(schema.get("type", "object"))
    if kind == "array":
        return f"[]{_type(schema.get('items', {}))}"
    if kind == "object" and "additionalProperties" in schema:
        return f"map[string]{_type(schema['additionalProperties'])}"
    return kind


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _rows(schema: dict[str, Any], path: str, required: set[str]) -> list[str]:
    rows = []
    for name, child in schema.get("properties", {}).items():
        field = f"{path}.{name}" if path else name
        notes = []
        if name in required:
            notes.append("required")
        if "default" in child:
            notes.append(f"default `{child['default']}`")
        if "enum" in child:
            notes.append("one of " + ", ".join(f"`{v}`" for v in child["enum"]))
        rows.append(f"| `{field}` | {_type(child)} | {_cell(child.get('description', ''))} | "
                    f"{'; '.join(notes)} |")
        target = child.get("items", child) if child.get("type") == "array" else child
        if target.get("properties"):
            suffix = "[]" if child.get("type") == "array" else ""
            rows += _rows(target, field + suffix, set(target.get("required", [])))
    return rows


def render(crd_dir: Path) -> str:
    out = ["# Field reference", "",
           "Generated from the CRDs by `python -m warmstart.api.docgen`; the same text is",
           "what `kubectl explain` shows. Do not edit by hand.", ""]
    for file in CRDS:
        crd = yaml.safe_load((crd_dir / file).read_text())
        kind = crd["spec"]["names"]["kind"]
        version = crd["spec"]["versions"][0]
        schema = version["schema"]["openAPIV3Schema"]
        out += [f"## {kind} (`{crd['spec']['group']}/{version['name']}`)", "",
                _cell(schema.get("description", "")), ""]
        for part in ("spec", "status"):
            sub = schema["properties"][part]
            out += [f"### {part}", "", "| field | type | description | notes |",
                    "| --- | --- | --- | --- |"]
            out += _rows(sub, part, set(sub.get("required", [])))
            out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "reference.md")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    text = render(REPO / "crds")
    if args.check:
        if not args.out.exists() or args.out.read_text() != text:
            print(f"{args.out} is out of date: run python -m warmstart.api.docgen",
                  file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
