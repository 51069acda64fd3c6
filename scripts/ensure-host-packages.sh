#!/usr/bin/env bash
# Installs the Debian packages the local cluster's real node (`warmstart-cluster up`) and
# scripts/build-images need. Idempotent: prints nothing and asks apt nothing when all are
# present, so it can run before every real-node start.
set -euo pipefail

packages=(
  containerd                    # CRI runtime the kubelet talks to (1.6 works with kubelet 1.34)
  runc                          # OCI runtime containerd starts containers with
  containernetworking-plugins   # CNI bridge, host-local, loopback, portmap in /usr/lib/cni
  iptables                      # kube-proxy (iptables mode) and CNI portmap
  conntrack                     # kube-proxy clears stale UDP flows (DNS) with it
  iproute2                      # bridge, blackhole routes, netns checks
  debootstrap                   # base root filesystem for the images
  buildah                       # builds the Dockerfiles without a Docker engine
  skopeo                        # copies images between OCI archives and stores
)

missing=()
for pkg in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-host-packages: missing ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "==> installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# The package index may be stale or absent on a fresh machine; update once, quietly.
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian enables and starts the system containerd on install; the cluster runs its own
# instance (own root, state and socket) and does not need the system one.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl disable --now containerd >/dev/null 2>&1 || true
fi
