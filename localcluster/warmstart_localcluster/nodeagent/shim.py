"""Becomes one container: private mount namespace, volumes at their mount paths, exec.

Run by the node agent as `python -m warmstart_localcluster.nodeagent.shim LAUNCH.json`.
In a fresh mount namespace it bind-mounts each volume (and the termination-message file)
at the path the pod spec names, remounts the root read-only when the container's
securityContext asks for readOnlyRootFilesystem, then execs the container's command with
the pod's environment. The container therefore sees the same paths and the same read-only
root it would see on a real node, while the files live in the pod's private directory.

Mount targets that do not exist on the host are created there as empty directories or
files first (a bind mount needs a target); that is the one trace pods leave on the host.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import stat
import sys
from pathlib import Path

_CLONE_NEWNS = 0x00020000
_MS_RDONLY = 1
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, flags: int) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None, target.encode(), None, flags, None
        ),
        f"mount {source} -> {target}",
    )


def _ensure_target(target: Path, is_dir: bool) -> None:
    if target.exists():
        return
    if is_dir:
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()


def main(argv: list[str]) -> None:
    launch_file = Path(argv[1])
    launch = json.loads(launch_file.read_text())
    # The launch file holds resolved secrets from the environment: gone once read.
    launch_file.unlink()
    # Die with the node agent, as a container dies with its kubelet-managed sandbox.
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != launch["agent_pid"]:
        sys.exit(137)
    _check(_libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount(None, "/", _MS_REC | _MS_PRIVATE)

    # Open every source before mounting anything: a volume mounted at, say, /tmp would
    # otherwise hide the sources of later mounts that live under /tmp.
    sources = [os.open(m["source"], os.O_PATH) for m in launch["mounts"]]
    # Likewise the code the container runs (the project checkout and its Python
    # environment, which stand in for the image): if a volume lands on a directory above
    # them, they are mounted back, read-only, at the same path.
    targets = [m["target"].rstrip("/") + "/" for m in launch["mounts"]]
    hidden = [p for p in launch.get("preserve", [])
              if any((p.rstrip("/") + "/").startswith(t) for t in targets)]
    preserved = [os.open(p, os.O_PATH) for p in hidden]
    for m, fd in zip(launch["mounts"], sources, strict=True):
        target = Path(m["target"])
        # The kind of the source is read from the descriptor opened above, not from its path:
        # a volume directory removed meanwhile (its pod deleted) must not turn the target
        # into an empty file on the host, which breaks every later pod mounting there.
        _ensure_target(target, stat.S_ISDIR(os.fstat(fd).st_mode))
        _mount(f"/proc/self/fd/{fd}", str(target), _MS_BIND | _MS_REC)
        if m["read_only"]:
            _mount(None, str(target), _MS_REMOUNT | _MS_BIND | _MS_RDONLY)
    for path, fd in zip(hidden, preserved, strict=True):
        Path(path).mkdir(parents=True, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, _MS_BIND | _MS_REC)
        _mount(None, path, _MS_REMOUNT | _MS_BIND | _MS_RDONLY)
    for fd in sources + preserved:
        os.close(fd)
    if launch["read_only_root"]:
        _mount(None, "/", _MS_REMOUNT | _MS_BIND | _MS_RDONLY)

    workdir = launch.get("working_dir") or "/"
    try:
        os.chdir(workdir)
    except OSError as exc:
        print(f"cannot enter workingDir {workdir}: {exc.strerror}", file=sys.stderr)
        sys.exit(128)
    command = launch["argv"]
    env = launch["env"]
    try:
        os.execvpe(command[0], command, env)  # noqa: S606 (argv from the pod spec)
    except OSError as exc:
        # Same wording and exit code as a runtime that cannot start the entrypoint.
        print(f'exec: "{command[0]}": {exc.strerror}', file=sys.stderr)
        sys.exit(127)


if __name__ == "__main__":
    main(sys.argv)
