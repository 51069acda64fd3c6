"""Operator settings, read once at start-up from the environment (the Helm chart sets them)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A setting is malformed; the message names the variable."""


@dataclass(frozen=True)
class OperatorConfig:
    trainer_image: str = "ghcr.io/warmstart-dev/trainer:0.1.0"
    # The trainer's entrypoint; the subcommand and its flags are appended.
    trainer_command: tuple[str, ...] = ("python", "-m", "warmstart_trainer")
    # At most this many trainings of one lineage run at once; the rest wait as Queued.
    max_active_per_lineage: int = 1
    field_manager: str = "warmstart-operator"
    metrics_port: int = 8080
    # The unit of the controller's safety-net looks (seconds): a Training job every 6x this
    # when no event came, an idle lineage every 60x; rollouts are watched every 2 s.
    poll_seconds: float = 5.0
    # A WarmStartJob whose lineage does not exist waits this long before it fails (GitOps
    # tools may apply the job before the lineage).
    lineage_grace_seconds: float = 30.0
    # A training pod's image pull may keep failing this long before the run fails
    # (imagepull.py); errors a retry cannot mend fail it at once.
    image_pull_grace_seconds: float = 120.0
    # Images a WarmStartJob may name in spec.image besides trainer_image: an entry ending in
    # "/", ":" or "@" is a prefix, any other one exact image (trust.py). Empty: none.
    allowed_trainer_images: tuple[str, ...] = field(default_factory=tuple)
    # Service accounts a WarmStartJob may name besides the namespace's "default".
    allowed_service_accounts: tuple[str, ...] = field(default_factory=tuple)

    @staticmethod
    def from_env(env: Mapping[str, str] | None = None) -> OperatorConfig:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        if env.get("WARMSTART_TRAINER_IMAGE"):
            values["trainer_image"] = env["WARMSTART_TRAINER_IMAGE"]
        if env.get("WARMSTART_TRAINER_COMMAND"):
            values["trainer_command"] = tuple(shlex.split(env["WARMSTART_TRAINER_COMMAND"]))
        for key, name, cast in (
            ("max_active_per_lineage", "WARMSTART_MAX_ACTIVE_PER_LINEAGE", int),
            ("metrics_port", "WARMSTART_METRICS_PORT", int),
            ("poll_seconds", "WARMSTART_POLL_SECONDS", float),
            ("lineage_grace_seconds", "WARMSTART_LINEAGE_GRACE_SECONDS", float),
            ("image_pull_grace_seconds", "WARMSTART_IMAGE_PULL_GRACE_SECONDS", float),
        ):
            if env.get(name):
                try:
                    values[key] = cast(env[name])
                except ValueError:
                    raise ConfigError(f"{name}={env[name]!r} is not a number") from None
        for key, name in (("allowed_trainer_images", "WARMSTART_ALLOWED_IMAGES"),
                          ("allowed_service_accounts", "WARMSTART_ALLOWED_SERVICE_ACCOUNTS")):
            values[key] = tuple(item.strip() for item in env.get(name, "").split(",")
                                if item.strip())
        config = OperatorConfig(**values)  # type: ignore[arg-type]
        if config.max_active_per_lineage < 1:
            raise ConfigError("WARMSTART_MAX_ACTIVE_PER_LINEAGE must be >= 1")
        if config.image_pull_grace_seconds < 0:
            raise ConfigError("WARMSTART_IMAGE_PULL_GRACE_SECONDS must be >= 0")
        return config
