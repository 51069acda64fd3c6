"""The real node's containerd: its own config, root, state and socket under the state dir.

Debian's containerd 1.6 and runc serve the kubelet through CRI. Everything it creates
(snapshots, shim state, runc state, pod network namespaces) lives under
`state_dir/containerd`, so `sweep()` can find and remove what a crash left behind without
touching anything else on the machine.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from warmstart_localcluster import processes
from warmstart_localcluster.errors import ClusterError
from warmstart_localcluster.paths import cache_dir

NAMESPACE = "k8s.io"
PAUSE_IMAGE = "localhost/warmstart/pause:v1"


def root(state_dir: Path) -> Path:
    return state_dir / "containerd"


def content_root() -> Path:
    """Image content and snapshots outlive a cluster: a warm `up` imports nothing."""
    return cache_dir() / "node-containerd"


def socket(state_dir: Path) -> Path:
    return root(state_dir) / "containerd.sock"


def runc_root(state_dir: Path) -> Path:
    return root(state_dir) / "runc"


def cni_conf_dir(state_dir: Path) -> Path:
    return root(state_dir) / "cni" / "net.d"


def hosts_dir(state_dir: Path) -> Path:
    """Registry hosts (hosts.toml per registry name), for the kubelet's pulls and ours."""
    return root(state_dir) / "certs.d"


def write_config(state_dir: Path) -> Path:
    base = root(state_dir)
    config = base / "config.toml"
    base.mkdir(parents=True, exist_ok=True)
    config.write_text(f"""version = 2
root = "{content_root()}"
state = "{base / 'state'}"
temp = "{base / 'tmp'}"
# The node's containerd must not grab the machine's own OOM priority either.
oom_score = 0

[grpc]
  address = "{socket(state_dir)}"

[plugins."io.containerd.grpc.v1.cri"]
  # The sandbox image is built and imported locally (it is needed before any pull).
  sandbox_image = "{PAUSE_IMAGE}"
  # A negative oom_score_adj needs CAP_SYS_RESOURCE, which this machine's bounding set
  # lacks; without this every pod sandbox fails with "can't get final child's PID".
  restrict_oom_score_adj = true
  # Pod network namespaces under our state dir, so teardown can find every one of them.
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  enable_unprivileged_ports = false
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".registry]
    # `localhost/...` images come from the cluster's registry on 127.0.0.1 (registry.py).
    config_path = "{hosts_dir(state_dir)}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni_conf_dir(state_dir)}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # cgroup v1 host, cgroupfs driver (the kubelet is configured the same way).
        SystemdCgroup = false
        Root = "{runc_root(state_dir)}"
""")
    return config


def start(state_dir: Path, timeout: float) -> None:
    config = write_config(state_dir)
    processes.start("containerd", ["containerd", "--config", str(config)], state_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ctr(state_dir, "version", check=False).returncode == 0:
            return
        time.sleep(0.3)
    raise ClusterError(
        f"containerd did not answer within {timeout:.0f}s:\n"
        f"{processes.log_tail(state_dir, 'containerd')}"
    )


def ctr(state_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ctr", "--address", str(socket(state_dir)), "--namespace", NAMESPACE, *args],
        check=check, capture_output=True, text=True,
    )


def import_image(state_dir: Path, archive: Path) -> None:
    """Loads an OCI/docker archive into the node's image store (as a registry pull would)."""
    result = ctr(state_dir, "images", "import", str(archive), check=False)
    if result.returncode != 0:
        raise ClusterError(f"importing {archive} into containerd failed: {result.stderr}")


def pull(state_dir: Path, ref: str) -> None:
    """Pulls through the hosts directory; only the blobs the store lacks are fetched."""
    result = ctr(state_dir, "images", "pull", "--hosts-dir", str(hosts_dir(state_dir)), ref,
                 check=False)
    if result.returncode != 0:
        raise ClusterError(f"pulling {ref} into containerd failed: {result.stderr[-2000:]}")


def untagged_images(listing: str) -> list[str]:
    """From `ctr images ls` output: the records whose manifest no named image shares."""
    rows = [line.split()[:3] for line in listing.splitlines()[1:] if line.split()]
    tagged = {digest for name, _, digest in rows if not name.startswith("sha256:")}
    return [name for name, _, digest in rows if digest not in tagged]


def prune_images(state_dir: Path) -> list[str]:
    """Drops image records no tag points at; returns what it dropped.

    The CRI plugin names every image it sees by its id as well (`sha256:<config>`), so an
    image whose tag moved on after a rebuild stays referenced, with its GBs of content and
    snapshots, until its id record goes. Called at `up`, before any container runs.
    """
    stale = untagged_images(ctr(state_dir, "images", "ls").stdout)
    if stale:
        ctr(state_dir, "images", "rm", "--sync", *stale)
    return stale


def remove_containers(state_dir: Path) -> None:
    """Drops container records an earlier node left in the persistent metadata."""
    for line in ctr(state_dir, "tasks", "ls", check=False).stdout.splitlines()[1:]:
        if line.split():
            ctr(state_dir, "tasks", "rm", "-f", line.split()[0], check=False)
    for cid in ctr(state_dir, "containers", "ls", "-q", check=False).stdout.split():
        ctr(state_dir, "containers", "rm", cid, check=False)


def stop_pods(state_dir: Path) -> None:
    """Kills every container runc runs for this node (after the kubelet has stopped)."""
    runc_dir = runc_root(state_dir) / NAMESPACE
    if not runc_dir.is_dir():
        return
    for container in runc_dir.iterdir():
        subprocess.run(["runc", "--root", str(runc_dir), "kill", "--all", container.name, "KILL"],
                       check=False, capture_output=True)
    time.sleep(0.5)
    for container in runc_dir.iterdir():
        subprocess.run(["runc", "--root", str(runc_dir), "delete", "--force", container.name],
                       check=False, capture_output=True)


def sweep(state_dir: Path) -> list[str]:
    """Unmounts everything under the state dir (deepest first); returns what it unmounted.

    Container root filesystems, pod /dev/shm, kubelet volumes (projected tokens, emptyDir
    on tmpfs) and pod network namespaces are all mounts under state_dir.
    """
    prefix = str(state_dir.resolve()) + "/"
    unmounted: list[str] = []
    for _ in range(3):
        points = [p for p in _mount_points() if p.startswith(prefix)]
        if not points:
            break
        for point in sorted(points, key=len, reverse=True):
            if subprocess.run(["umount", "-l", point], check=False,
                              capture_output=True).returncode == 0:
                unmounted.append(point)
    return unmounted


def mounts_under(state_dir: Path) -> list[str]:
    prefix = str(state_dir.resolve()) + "/"
    return [p for p in _mount_points() if p.startswith(prefix)]


def _mount_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Field 5 is the mount point, octal-escaped for spaces.
        points.append(line.split()[4].encode().decode("unicode_escape"))
    return points
