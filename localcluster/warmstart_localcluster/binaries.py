"""Finds or builds the control-plane binaries from their Go modules.

A binary is looked up in this order: an explicit env var (e.g. WARMSTART_KUBE_APISERVER),
the build cache (keyed by component version and a digest of its wrapper module), then the
Go build. PATH is not searched by default because a stray binary of another version breaks
tests in confusing ways; set WARMSTART_USE_PATH=1 to allow it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from warmstart_localcluster.paths import cache_dir, go_wrappers_dir


class BinaryError(RuntimeError):
    """A binary could not be found or built; the message says what to do."""


@dataclass(frozen=True)
class Component:
    """One binary built from a wrapper Go module under localcluster/go/."""

    name: str
    module_dir: str
    package: str
    version: str
    ldflags: tuple[str, ...] = ()
    tags: str = ""

    @property
    def env_var(self) -> str:
        return "WARMSTART_" + self.name.upper().replace("-", "_")


KUBE_VERSION = "v1.34.4"
_KUBE_VERSION_LDFLAGS = tuple(
    f"-X {pkg}.{key}={value}"
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
    for key, value in (
        ("gitVersion", KUBE_VERSION),
        ("gitMajor", "1"),
        ("gitMinor", KUBE_VERSION.split(".")[1]),
        ("gitTreeState", "clean"),
        ("buildDate", "2026-01-01T00:00:00Z"),
    )
)


def _kube(name: str, module_dir: str = "kube") -> Component:
    return Component(
        name=name,
        module_dir=module_dir,
        package=f"./cmd/{name}",
        version=KUBE_VERSION,
        ldflags=_KUBE_VERSION_LDFLAGS,
        tags="selinux,notest",
    )


COMPONENTS: dict[str, Component] = {
    c.name: c
    for c in (
        _kube("kube-apiserver"),
        _kube("kube-controller-manager"),
        _kube("kubectl"),
        Component("etcd", "etcd", ".", "v3.6.16"),
        Component(
            "helm",
            "helm",
            "helm.sh/helm/v3/cmd/helm",
            "v3.19.0",
            ldflags=("-X helm.sh/helm/v3/internal/version.version=v3.19.0",),
        ),
        Component("weed", "seaweedfs", "github.com/seaweedfs/seaweedfs/weed", "20261109"),
        # The node's. kubenode is a module of its own so that the node's dependencies
        # leave the control-plane binaries' cache keys unchanged.
        _kube("kubelet", "kubenode"),
        _kube("kube-proxy", "kubenode"),
        _kube("kube-scheduler", "kubenode"),
        Component("coredns", "coredns", ".", "v1.12.1"),
        Component("pause", "pause", ".", "v1"),
        # CNCF distribution: the registry the node pulls the project's images from, so a
        # code change moves one small layer instead of re-importing a 6 GB archive.
        Component("registry", "registry",
                  "github.com/distribution/distribution/v3/cmd/registry", "v3.1.2"),
    )
}


def _component(name: str) -> Component:
    return COMPONENTS[name]


def _wrapper_digest(component: Component) -> str:
    """Digest of the wrapper module, so editing go.mod or main.go triggers a rebuild."""
    root = go_wrappers_dir() / component.module_dir
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in {".go", ".mod", ".sum"}:
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    h.update(" ".join(component.ldflags).encode())
    return h.hexdigest()[:12]


def cached_path(component: Component) -> Path:
    key = f"{component.name}-{component.version}-{_wrapper_digest(component)}"
    return cache_dir() / "bin" / key / component.name


def locate(name: str) -> Path | None:
    """Returns an existing binary for `name` without building, or None."""
    component = _component(name)
    override = os.environ.get(component.env_var)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BinaryError(f"{component.env_var}={override} is not an executable file")
        return path
    cached = cached_path(component)
    if cached.is_file():
        return cached
    if os.environ.get("WARMSTART_USE_PATH") == "1":
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def ensure(name: str) -> Path:
    """Returns the binary for `name`, building it (with progress on stderr) if needed."""
    found = locate(name)
    if found is not None:
        return found
    component = _component(name)
    target = cached_path(component)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Two runs (a test session and a demo, say) must not build the same binary at once:
    # the second waits for the first and then finds the result in the cache.
    with (target.parent / "build.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _progress(f"waiting for another process that is building {name}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            return target
        return _build(component)


def ensure_all(names: list[str] | None = None) -> dict[str, Path]:
    return {name: ensure(name) for name in (names or list(COMPONENTS))}


def _build(component: Component) -> Path:
    go = shutil.which("go")
    if go is None:
        raise BinaryError(
            f"{component.name} is not built and `go` is not on PATH: install Go >= 1.24, "
            f"or point {component.env_var} at an existing {component.name} binary"
        )
    target = cached_path(component)
    partial = target.with_name(target.name + ".partial")
    cmd = [go, "build", "-v", "-o", str(partial)]
    if component.tags:
        cmd += ["-tags", component.tags]
    ldflags = ["-s", "-w", *component.ldflags]
    cmd += ["-ldflags", " ".join(ldflags), component.package]
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}
    log_path = target.parent / "build.log"
    _progress(f"building {component.name} {component.version} from Go modules "
              f"(first time only; several minutes on 2 cores); log: {log_path}")
    started = time.monotonic()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=go_wrappers_dir() / component.module_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        ticker = threading.Thread(
            target=_report_while_running, args=(proc, log_path, component.name, started),
            daemon=True,
        )
        ticker.start()
        code = proc.wait()
        ticker.join(timeout=1)
    if code != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        raise BinaryError(
            f"building {component.name} failed (exit {code}); see {log_path}:\n{tail}"
        )
    # Rename last: a killed build never leaves a half-written binary at the cached path.
    partial.replace(target)
    _progress(f"built {component.name} in {time.monotonic() - started:.0f}s -> {target}")
    return target


def _report_while_running(
    proc: subprocess.Popen[bytes], log_path: Path, name: str, started: float
) -> None:
    # `go build -v` prints each package as it compiles: their count is the progress.
    while proc.poll() is None:
        time.sleep(15)
        if proc.poll() is not None:
            break
        try:
            packages = sum(1 for _ in log_path.open())
        except OSError:
            packages = 0
        _progress(f"  ... {name}: {packages} packages compiled, {time.monotonic() - started:.0f}s")


def _progress(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)
