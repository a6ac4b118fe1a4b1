"""Object storage: the one ``obs_url`` grammar and the store behind it (a local folder or S3)."""

from openarts.storage.paths import ObsPath, invalid_obs_path, parse_obs_url
from openarts.storage.store import ObjectInfo, ObjectStore

__all__ = ["ObjectInfo", "ObjectStore", "ObsPath", "invalid_obs_path", "parse_obs_url"]
