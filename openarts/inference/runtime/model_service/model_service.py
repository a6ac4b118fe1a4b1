"""``SingleNodeService``: the generic ModelArts base class (MindSpore and custom models derive from it).

``inference`` runs the three hooks in ModelArts' order; subclasses override the ones they need.
"""

from __future__ import annotations

from typing import Any


class SingleNodeService:
    def __init__(self, model_name: str | None = None, model_path: str | None = None) -> None:
        self.model_name = model_name
        self.model_path = model_path

    def inference(self, data: Any) -> Any:
        return self._postprocess(self._inference(self._preprocess(data)))

    def _preprocess(self, data: Any) -> Any:
        return data

    def _inference(self, data: Any) -> Any:
        return data

    def _postprocess(self, data: Any) -> Any:
        return data


class BaseService(SingleNodeService):
    """Another name some ModelArts examples use for the generic base."""
