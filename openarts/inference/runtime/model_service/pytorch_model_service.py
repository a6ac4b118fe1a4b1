"""``PTServingBaseService``: the base of PyTorch models. Subclasses load ``self.model`` in ``__init__``."""

from __future__ import annotations

from typing import Any

from .model_service import SingleNodeService


class PTServingBaseService(SingleNodeService):
    def __init__(self, model_name: str | None = None, model_path: str | None = None) -> None:
        super().__init__(model_name, model_path)
        self.model: Any = None

    def _inference(self, data: Any) -> Any:
        return {key: self.model(value) for key, value in data.items()}
