"""Brings the local control plane up and down.

Up: the node's network -> etcd -> kube-apiserver -> kube-controller-manager -> S3 server
-> the real node (containerd, kubelet, kube-proxy, kube-scheduler, CoreDNS; see the node package),
each waited on before the next, then a kubeconfig that kubectl uses as is. Down: the pods,
then every process marked for this state directory, then the node's mounts, network
namespaces, bridge, routes and iptables rules. etcd listens on 127.0.0.1 only; the API
server and the S3 gateway listen on the node's bridge address, which exists only on this
machine, because pods reach them there.
"""

from __future__ import annotations

import json
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from warmstart_localcluster import binaries, kubeconfig, node, pki, processes, s3server
from warmstart_localcluster.errors import ClusterError
from warmstart_localcluster.ports import fixed_port, free_ports

NODE_NAME = "warmstart-node"
# The longest socket path the kubelet makes under the state dir (its pod-resources socket
# has a 10-digit random name) and the room a unix socket path has (108 bytes with its NUL).
_LONGEST_SOCKET = "kubelet/root/device-plugins/kubelet.sock"
MAX_STATE_DIR_CHARS = 107 - len("/" + _LONGEST_SOCKET) - 2
SERVICE_CIDR = "10.0.0.0/24"


@dataclass(frozen=True)
class ClusterInfo:
    """What a client needs to use a running local cluster (state_dir/cluster.json)."""

    state_dir: str
    apiserver: str
    kubeconfig: str
    kubectl: str
    helm: str
    node: str
    s3_endpoint: str
    s3_access_key: str
    s3_secret_key: str
    s3_region: str
    # Bucket-scoped credentials: tenant name (also its bucket) -> [access key, secret key].
    s3_tenants: dict[str, list[str]] = field(default_factory=dict)

    @staticmethod
    def load(state_dir: Path) -> ClusterInfo:
        path = state_dir / "cluster.json"
        try:
            return ClusterInfo(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise ClusterError(
                f"no local cluster at {state_dir}: run `warmstart-cluster up` first"
            ) from None

    def s3_env(self, tenant: str | None = None) -> dict[str, str]:
        access, secret = (self.s3_access_key, self.s3_secret_key) if tenant is None else (
            self.s3_tenants[tenant][0], self.s3_tenants[tenant][1])
        return {
            "AWS_ACCESS_KEY_ID": access,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_ENDPOINT_URL": self.s3_endpoint,
            "AWS_REGION": self.s3_region,
        }


def _say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def status(state_dir: Path) -> ClusterInfo | None:
    """The running cluster's info when its API server and S3 server answer, else None."""
    try:
        info = ClusterInfo.load(state_dir)
    except (ClusterError, TypeError, ValueError):
        return None
    p = pki.Pki(state_dir / "pki")
    if not _apiserver_ready(info.apiserver, p):
        return None
    if not s3server.healthy(info.s3_endpoint):
        return None
    return info


def up(state_dir: Path, fresh: bool = False, timeout: float = 180.0) -> ClusterInfo:
    """Starts the cluster (or returns the running one unless `fresh`). Root only: a real
    node needs containers, a bridge and iptables (node.check_host says what is missing).
    """
    node.check_host()
    state_dir = state_dir.resolve()
    _check_path_length(state_dir)
    if not fresh:
        running = status(state_dir)
        # A cluster of an older release ran its pods without a real node: it is replaced.
        if running is not None and processes.marked_pids(state_dir) and node.present(
                state_dir):
            _say(f"local cluster already running (state {state_dir})")
            return running
    stopped = processes.stop_all(state_dir)
    if stopped:
        _say(f"stopped {stopped} leftover processes of an earlier run of this cluster")
    # Mounts and network of an earlier real node go first: rmtree must never reach
    # through a mount point.
    node.cleanup(state_dir)
    if state_dir.exists():
        _say(f"discarding the earlier cluster state in {state_dir}")
        shutil.rmtree(state_dir)
    state_dir.mkdir(parents=True)
    state_dir.chmod(0o700)
    try:
        return _start(state_dir, timeout)
    except BaseException:
        # Half a cluster would hold the machine's one node (its bridge and ranges) until
        # someone found it: whatever started is stopped, the state kept for its logs.
        down(state_dir)
        raise


def _check_path_length(state_dir: Path) -> None:
    """The node's unix sockets live under the state dir, and a socket's path has at most
    107 bytes: refuse a state dir too long for them up front, not with a kubelet that never
    becomes ready."""
    if len(str(state_dir)) > MAX_STATE_DIR_CHARS:
        raise ClusterError(
            f"state dir {state_dir} is {len(str(state_dir))} characters long; the node's unix "
            f"sockets under it (e.g. {_LONGEST_SOCKET}) allow at most {MAX_STATE_DIR_CHARS}: "
            "choose a shorter --state-dir or WARMSTART_STATE")


def _start(state_dir: Path, timeout: float) -> ClusterInfo:

    # A pinned port someone holds is refused before minutes of building, not after.
    pinned_api_port = fixed_port("WARMSTART_APISERVER_PORT")
    # Every component: the cluster uses them all (the node's registry too).
    bins = binaries.ensure_all()
    started = time.monotonic()
    # Pods reach the API server through the `kubernetes` Service, so it listens on the
    # node's bridge address (which exists only on this machine).
    host = node.NODE_IP
    node.prepare(state_dir)
    p = pki.create(state_dir / "pki", extra_ips=(host,))
    etcd_port, etcd_peer, api_port = free_ports(3)
    api_port = pinned_api_port or api_port
    apiserver = f"https://{host}:{api_port}"

    _say("starting etcd")
    processes.start("etcd", [
        str(bins["etcd"]),
        "--name=local",
        f"--data-dir={state_dir / 'etcd'}",
        f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
        f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
        f"--listen-peer-urls=http://127.0.0.1:{etcd_peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}",
        f"--initial-cluster=local=http://127.0.0.1:{etcd_peer}",
        # A throwaway test store: durability is not worth the fsync latency.
        "--unsafe-no-fsync",
        "--log-level=warn",
    ], state_dir)
    _wait(lambda: _http_ok(f"http://127.0.0.1:{etcd_port}/health"), "etcd", state_dir, timeout)

    _say("starting kube-apiserver")
    processes.start("kube-apiserver", [
        str(bins["kube-apiserver"]),
        f"--etcd-servers=http://127.0.0.1:{etcd_port}",
        f"--bind-address={host}",
        f"--advertise-address={host}",
        f"--secure-port={api_port}",
        f"--tls-cert-file={p.serving_cert}",
        f"--tls-private-key-file={p.serving_key}",
        f"--client-ca-file={p.ca_cert}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=Node,RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={p.sa_pub}",
        f"--service-account-signing-key-file={p.sa_key}",
        f"--kubelet-client-certificate={p.client_cert('apiserver-kubelet-client')}",
        f"--kubelet-client-key={p.client_key('apiserver-kubelet-client')}",
        # The Node's name resolves nowhere (and must not be asked of the host's DNS).
        "--kubelet-preferred-address-types=InternalIP",
        "--allow-privileged=true",
        "--profiling=false",
        "--v=1",
    ], state_dir)
    _wait(lambda: _apiserver_ready(apiserver, p), "kube-apiserver", state_dir, timeout)

    admin_kubeconfig = state_dir / "kubeconfig"
    kubeconfig.write(admin_kubeconfig, apiserver, p, "admin")
    kcm_kubeconfig = state_dir / "controller-manager.kubeconfig"
    kubeconfig.write(kcm_kubeconfig, apiserver, p, "controller-manager")

    _say("starting kube-controller-manager")
    processes.start("kube-controller-manager", [
        str(bins["kube-controller-manager"]),
        f"--kubeconfig={kcm_kubeconfig}",
        f"--authentication-kubeconfig={kcm_kubeconfig}",
        f"--authorization-kubeconfig={kcm_kubeconfig}",
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={p.sa_key}",
        f"--root-ca-file={p.ca_cert}",
        f"--cluster-signing-cert-file={p.ca_cert}",
        f"--cluster-signing-key-file={p.ca_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        # The node's pod range is the CNI config's (node.network), not handed out by
        # node IPAM; there is no cloud. The node-lifecycle controller stays: it lifts the
        # new Node's not-ready taint once the kubelet reports Ready.
        "--controllers=*,-node-ipam-controller,-cloud-node-lifecycle-controller",
        "--secure-port=0",
        "--v=1",
    ], state_dir)

    # Pods reach object storage like the API server: on the bridge address.
    s3 = s3server.start(bins["weed"], state_dir, timeout, host=host)

    info = ClusterInfo(
        state_dir=str(state_dir),
        apiserver=apiserver,
        kubeconfig=str(admin_kubeconfig),
        kubectl=str(bins["kubectl"]),
        helm=str(bins["helm"]),
        node=NODE_NAME,
        s3_endpoint=s3.endpoint,
        s3_access_key=s3.access_key,
        s3_secret_key=s3.secret_key,
        s3_region=s3.region,
        s3_tenants={name: list(creds) for name, creds in s3.tenants.items()},
    )
    info_path = state_dir / "cluster.json"
    info_path.touch(mode=0o600)
    info_path.write_text(json.dumps(asdict(info), indent=2))

    _say("starting containerd, kubelet, kube-proxy, kube-scheduler and CoreDNS")
    node.start(state_dir, p, apiserver, bins["kubectl"], NODE_NAME, timeout)
    _wait(lambda: _node_ready(info), "kubelet", state_dir, timeout)
    _wait(lambda: _coredns_ready(info), "coredns", state_dir, timeout)
    _wait(lambda: _default_service_account(info), "kube-controller-manager", state_dir, timeout)
    _say(f"local cluster up in {time.monotonic() - started:.1f}s; "
         f"export KUBECONFIG={admin_kubeconfig}")
    return info


def down(state_dir: Path) -> int:
    """Stops every process of the cluster; keeps the state directory for post-mortems."""
    state_dir = state_dir.resolve()
    node.stop_workloads(state_dir)
    count = processes.stop_all(state_dir)
    node.cleanup(state_dir)
    _say(f"stopped {count} processes of the local cluster at {state_dir}")
    return count


def _wait(check: Callable[[], bool], name: str, state_dir: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise ClusterError(
        f"{name} did not become ready within {timeout:.0f}s; last log lines "
        f"({state_dir / 'logs' / (name + '.log')}):\n{processes.log_tail(state_dir, name)}"
    )


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _admin_ssl(p: pki.Pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(p.ca_cert))
    ctx.load_cert_chain(str(p.client_cert("admin")), str(p.client_key("admin")))
    return ctx


def _apiserver_ready(apiserver: str, p: pki.Pki) -> bool:
    try:
        ctx = _admin_ssl(p)
    except (OSError, ssl.SSLError):
        return False
    return _http_ok(f"{apiserver}/readyz", ctx)


def _get_json(info: ClusterInfo, path: str) -> dict[str, object] | None:
    p = pki.Pki(Path(info.state_dir) / "pki")
    try:
        with urllib.request.urlopen(  # noqa: S310
            f"{info.apiserver}{path}", timeout=3, context=_admin_ssl(p)
        ) as resp:
            data: dict[str, object] = json.loads(resp.read())
            return data
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _node_ready(info: ClusterInfo) -> bool:
    got = _get_json(info, f"/api/v1/nodes/{info.node}")
    if not got:
        return False
    conditions = got.get("status", {}).get("conditions", [])  # type: ignore[attr-defined]
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _coredns_ready(info: ClusterInfo) -> bool:
    deployment = _get_json(info, "/apis/apps/v1/namespaces/kube-system/deployments/coredns")
    status = (deployment or {}).get("status") or {}
    return bool(status.get("availableReplicas"))  # type: ignore[attr-defined]


def _default_service_account(info: ClusterInfo) -> bool:
    # Pods cannot be created in a namespace until its `default` ServiceAccount exists, and
    # the root CA ConfigMap is what in-cluster clients verify the API server with.
    return (
        _get_json(info, "/api/v1/namespaces/default/serviceaccounts/default") is not None
        and _get_json(info, "/api/v1/namespaces/default/configmaps/kube-root-ca.crt") is not None
    )

