"""Settings, read once from ``OPENARTS_*`` environment variables.

Every command (the server and the CLI) builds its settings here, so they agree on the data directory
and the database without any other coordination.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _float(env: dict[str, str], name: str) -> float | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {raw!r}")
    return value


def _json_object(env: dict[str, str], name: str) -> str | None:
    """A setting holding a JSON object of strings, checked at start-up so a typo fails loudly then."""
    raw = env.get(name) or None
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a JSON object, got {raw!r}") from exc
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"{name} must be a JSON object of strings, got {raw!r}")
    return raw


def _choice(env: dict[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (the first is the default), checked at start-up so a typo fails loudly then."""
    raw = (env.get(name) or choices[0]).strip().lower()
    if raw not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    region: str = "local"
    max_body_bytes: int = 4 * 1024 * 1024
    token_ttl_s: int = 24 * 3600
    signature_skew_s: int = 15 * 60
    max_workspaces_per_project: int = 100
    # Object storage: a folder in the data directory, or an S3-compatible service when an endpoint is set.
    obs_endpoint: str | None = None
    obs_access_key: str | None = None
    obs_secret_key: str | None = None
    # Compute: the capacity jobs share (default: the whole machine) and how oversized flavors are treated.
    compute_cpus: float | None = None
    compute_memory_gb: float | None = None
    strict_flavors: bool = False
    # More local engines: a JSON object {"engine name": "/path/to/python"} (see openarts.compute.engines).
    extra_engines: str | None = None
    # Workflow subscriptions: a JSON object {"topic urn": "webhook url"}; also the allow-list of targets.
    workflow_webhooks: str | None = None
    # Where this server is reached (service access addresses handed to workflow steps); `openarts serve`
    # fills it from --host/--port when unset.
    public_url: str | None = None
    # Where jobs run: "local" processes, or a Ray cluster (its dashboard address; see docs/operations.md).
    executor: str = "local"
    ray_address: str | None = None
    # Every Ray node mounts the data folder at the same path (jobs' folders are read and written there).
    ray_shared_fs: bool = False
    # A directory of the S3-compatible store for the server's own objects (obs://bucket/prefix/): with Ray
    # and no shared folder, service instances get their model packages from it and report their ports to it.
    obs_private_url: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("OPENARTS_DATA_DIR") or "./.openarts").expanduser().absolute()
        database_url = env.get("OPENARTS_DATABASE_URL") or f"sqlite:///{data_dir / 'openarts.db'}"
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            region=env.get("OPENARTS_REGION") or "local",
            max_body_bytes=_int(env, "OPENARTS_MAX_BODY_BYTES", 4 * 1024 * 1024),
            token_ttl_s=_int(env, "OPENARTS_TOKEN_TTL_S", 24 * 3600),
            signature_skew_s=_int(env, "OPENARTS_SIGNATURE_SKEW_S", 15 * 60),
            max_workspaces_per_project=_int(env, "OPENARTS_MAX_WORKSPACES", 100),
            obs_endpoint=env.get("OPENARTS_OBS_ENDPOINT") or None,
            obs_access_key=env.get("OPENARTS_OBS_ACCESS_KEY") or None,
            obs_secret_key=env.get("OPENARTS_OBS_SECRET_KEY") or None,
            compute_cpus=_float(env, "OPENARTS_COMPUTE_CPUS"),
            compute_memory_gb=_float(env, "OPENARTS_COMPUTE_MEMORY_GB"),
            strict_flavors=env.get("OPENARTS_STRICT_FLAVORS", "").lower() in ("1", "true", "yes"),
            extra_engines=env.get("OPENARTS_ENGINES") or None,
            workflow_webhooks=_json_object(env, "OPENARTS_WORKFLOW_WEBHOOKS"),
            public_url=(env.get("OPENARTS_PUBLIC_URL") or "").rstrip("/") or None,
            executor=_choice(env, "OPENARTS_EXECUTOR", ("local", "ray")),
            ray_address=env.get("OPENARTS_RAY_ADDRESS") or None,
            ray_shared_fs=env.get("OPENARTS_RAY_SHARED_FS", "").lower() in ("1", "true", "yes"),
            obs_private_url=env.get("OPENARTS_OBS_PRIVATE_URL") or None,
        )

    @property
    def obs_root(self) -> Path:
        """Where buckets live when no S3 endpoint is configured: one folder per bucket."""
        return self.data_dir / "obs"

    @property
    def jobs_dir(self) -> Path:
        """Working folders of jobs (code, inputs, outputs, logs), one per job."""
        return self.data_dir / "jobs"

    @property
    def notebooks_dir(self) -> Path:
        """Each notebook instance's folder: its work directory (the EVS volume), Jupyter's state, its log."""
        return self.data_dir / "notebooks"

    @property
    def admin_credentials_file(self) -> Path:
        return self.data_dir / "admin-credentials.json"

    def ensure_data_dir(self) -> None:
        """Create the data directory readable by its owner only (0700)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
