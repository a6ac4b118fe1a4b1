"""``XgSklServingBaseService``: the base of Scikit_Learn and XGBoost models, and their default service.

As ModelArts' built-in runtime: ``__init__(model_path)`` with the model *file*; ``_preprocess`` gets the
raw request body and turns ``data.req_data`` rows into lists of values (key order); ``_inference`` loads
the file with joblib (XGBoost's Booster as the fallback) and predicts; ``_postprocess`` gives
``[{"predictresult": value}, ...]``. The model is loaded once, on first use, not on every call.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from .model_service import SingleNodeService


class XgSklServingBaseService(SingleNodeService):
    def __init__(self, model_path: str | None = None) -> None:
        super().__init__(None, model_path)
        self._model: Any = None
        self._xgb = False
        self._load_lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    import joblib  # type: ignore[import-untyped]

                    try:
                        self._model = joblib.load(self.model_path)
                    except Exception:
                        import xgboost as xgb  # type: ignore[import-not-found]  # only XGBoost's own format reaches here

                        self._model = xgb.Booster(model_file=self.model_path)
                        self._xgb = True
        return self._model

    def _preprocess(self, data: Any) -> Any:
        if isinstance(data, bytes | str):
            data = json.loads(data, object_pairs_hook=OrderedDict)
        body = data.get("data", data)  # the newest XGBoost example drops the outer "data"
        return [list(row.values()) for row in body["req_data"]]

    def _inference(self, data: Any) -> Any:
        model = self._load()
        if self._xgb:
            import xgboost as xgb

            return model.predict(xgb.DMatrix(data)).tolist()
        return model.predict(data).tolist()

    def _postprocess(self, data: Any) -> Any:
        return [{"predictresult": value} for value in data]
