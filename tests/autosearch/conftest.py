from tests.training.conftest import Raw, member, outsider, raw, unique  # noqa: F401 - shared fixtures

__all__ = ["Raw"]
