"""The chart's CRD templates are crds/*.yaml, copied byte for byte, wrapped in
`crds.enabled` and given the chart's labels and the `crds.keep` annotation (cert-manager's
layout). test_chart_render.py fails when they drift; this module rewrites them:

    python -m tests.chart.crdsync
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
CHART = REPO / "charts" / "warmstart"
TEMPLATES = CHART / "templates"

HEADER = (
    "{{- if .Values.crds.enabled }}\n"
    "# Copied from crds/{source} by `python -m tests.chart.crdsync`; do not edit by hand.\n"
)
METADATA_EXTRA = (
    "  labels:\n"
    '    {{- include "warmstart.labels" . | nindent 4 }}\n'
    "  {{- if .Values.crds.keep }}\n"
    "  annotations:\n"
    "    helm.sh/resource-policy: keep\n"
    "  {{- end }}\n"
)
FOOTER = "{{- end }}\n"


def template_name(source: Path) -> str:
    return f"crd-{source.name}"


def to_template(source: Path) -> str:
    """The chart template for one generated CRD file."""
    lines = source.read_text().splitlines(keepends=True)
    # The generator's own header comment names a command for crds/, not for the chart.
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    try:
        at = lines.index("metadata:\n")
    except ValueError:
        raise ValueError(f"{source}: no top-level metadata") from None
    # metadata must hold only its name: the chart owns labels and annotations.
    if not lines[at + 1].startswith("  name: ") or lines[at + 2].startswith("  "):
        raise ValueError(f"{source}: metadata holds more than a name; teach crdsync to merge")
    body = [*lines[: at + 2], METADATA_EXTRA, *lines[at + 2:]]
    text = "".join(body)
    if "{{" in text.replace(METADATA_EXTRA, "") or "}}" in text.replace(METADATA_EXTRA, ""):
        raise ValueError(f"{source}: contains template delimiters; it cannot be copied as is")
    return HEADER.replace("{source}", source.name) + text + FOOTER


def expected() -> dict[Path, str]:
    return {TEMPLATES / template_name(src): to_template(src)
            for src in sorted(CRDS.glob("*.yaml"))}


def main() -> None:
    for old in TEMPLATES.glob("crd-*.yaml"):
        old.unlink()
    for path, text in expected().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
