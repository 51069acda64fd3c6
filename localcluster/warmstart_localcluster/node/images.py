"""Images for the real node, built here: no registry is reachable to pull any from.

System images (the pod sandbox's pause, CoreDNS) are one static Go binary in an empty
root filesystem, built with buildah `from scratch`, saved as docker-archive tarballs in the
cache keyed by the binary's digest, and imported into the node's containerd once per
archive (the containerd content store lives in the cache too, so a warm `up` imports
nothing). The project's own images are built by scripts/build-images from the Dockerfiles
and reach the node through the local registry (registry.py).
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from warmstart_localcluster import binaries
from warmstart_localcluster.errors import ClusterError
from warmstart_localcluster.node import containerd
from warmstart_localcluster.paths import cache_dir

COREDNS_IMAGE = "localhost/warmstart/coredns:v1.12.1"


@dataclass(frozen=True)
class SystemImage:
    ref: str
    binary: str
    # Non-root: neither needs privileges (CoreDNS listens on an unprivileged port).
    user: str = "65535:65535"


SYSTEM_IMAGES = (
    SystemImage(containerd.PAUSE_IMAGE, "pause"),
    SystemImage(COREDNS_IMAGE, "coredns"),
)


def images_dir() -> Path:
    return cache_dir() / "images"


def buildah(*args: str) -> list[str]:
    """buildah with a store of our own in the cache (not the machine's /var/lib/containers)."""
    store = images_dir() / "buildah"
    return ["buildah", "--root", str(store / "root"), "--runroot", str(store / "run"),
            "--storage-driver", "overlay", *args]


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def system_archive(image: SystemImage) -> Path:
    """Builds (once per binary digest) and returns the image's docker-archive."""
    binary = binaries.ensure(image.binary)
    archive = images_dir() / f"{image.binary}-{_digest(binary)}.tar"
    if archive.is_file():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    work = _run(buildah("from", "scratch")).strip()
    try:
        _run(buildah("copy", "--chmod", "0755", work, str(binary), f"/{image.binary}"))
        _run(buildah("config", "--entrypoint", f'["/{image.binary}"]', "--user", image.user,
                     work))
        _run(buildah("commit", "--quiet", "--rm", work, f"docker-archive:{partial}:{image.ref}"))
    except ClusterError:
        subprocess.run(buildah("rm", work), check=False, capture_output=True)
        raise
    partial.replace(archive)
    return archive


def load(state_dir: Path, archive: Path) -> bool:
    """Imports the archive into the node's containerd unless already done; True if imported."""
    marker = containerd.content_root() / "imported" / archive.name
    if marker.is_file():
        return False
    containerd.import_image(state_dir, archive)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return True


def load_system_images(state_dir: Path) -> None:
    for image in SYSTEM_IMAGES:
        load(state_dir, system_archive(image))


def _run(argv: list[str]) -> str:
    result = subprocess.run(argv, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise ClusterError(f"{' '.join(argv[:6])} ... failed: {result.stderr.strip()}")
    return result.stdout
