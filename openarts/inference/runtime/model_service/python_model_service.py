"""``XgSklServingBaseService``: the base of Scikit_Learn and XGBoost models, and their default service.

As ModelArts' built-in runtime: ``__init__(model_path)`` with the model *file*; ``_preprocess`` gets the
raw request body and turns ``data.req_data`` rows into lists of values (key order); ``_inference`` loads
the file with joblib (XGBoost's ``Booster`` as the fallback) and predicts; ``_postprocess`` gives
``[{"predictresult": value}, ...]``. The model is loaded once (by the runtime at start-up for the default
service, else on first use), not on every call.

XGBoost files: a pickle or joblib dump of an ``XGBClassifier``/``XGBRegressor`` (any suffix), or a
``Booster.save_model`` file: ``.json`` and ``.ubj`` are read as ``Booster`` at once, ``.m``/``.model`` after
joblib refuses them (XGBoost tells JSON from UBJSON by the content; the old binary format, ModelArts'
xgboost 0.80 files, is gone since XGBoost 3.1). A model that keeps feature names (trained on a pandas
DataFrame, as ModelArts' XGBoost example) has the request's keys place the columns when they are exactly
those names; otherwise the values go by position, as in ModelArts.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from .model_service import SingleNodeService

BOOSTER_ONLY_SUFFIXES = (".json", ".ubj")  # never a pickle: no joblib attempt first


class Rows(list[list[Any]]):
    """The rows of ``_preprocess``: a plain list of lists, plus the keys of the request's objects when
    every row had the same keys in the same order (``None`` otherwise)."""

    columns: tuple[str, ...] | None = None


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
                    self._model, self._xgb = _load_model(str(self.model_path))
        return self._model

    def _preprocess(self, data: Any) -> Any:
        if isinstance(data, bytes | str):
            data = json.loads(data, object_pairs_hook=OrderedDict)
        body = data.get("data", data)  # the newest XGBoost example drops the outer "data"
        objects = body["req_data"]
        rows = Rows(list(row.values()) for row in objects)
        keys = {tuple(row.keys()) for row in objects}
        if len(keys) == 1:
            rows.columns = next(iter(keys))
        return rows

    def _inference(self, data: Any) -> Any:
        model = self._load()
        if self._xgb:
            import xgboost as xgb

            names = model.feature_names
            rows = _by_name(data, names)
            width = len(rows[0]) if rows else 0
            matrix = xgb.DMatrix(rows, feature_names=names if names and width == len(names) else None)
            return model.predict(matrix).tolist()
        if hasattr(model, "get_booster"):  # XGBoost's scikit-learn wrapper: the same columns rule
            names = model.get_booster().feature_names
            if names:
                return model.predict(_by_name(data, names), validate_features=False).tolist()
        return model.predict(data).tolist()

    def _postprocess(self, data: Any) -> Any:
        return [{"predictresult": value} for value in data]


def _load_model(path: str) -> tuple[Any, bool]:
    """The model of ``path`` and whether it is a raw XGBoost ``Booster``."""
    pickled_error: Exception | None = None
    if not path.endswith(BOOSTER_ONLY_SUFFIXES):
        import joblib  # type: ignore[import-untyped]

        try:
            return joblib.load(path), False
        except Exception as exc:
            pickled_error = exc
    try:
        import xgboost as xgb
    except ImportError:
        if pickled_error is not None:
            raise pickled_error from None  # not an XGBoost model then: joblib's error says why
        raise
    try:
        return xgb.Booster(model_file=path), True
    except Exception as exc:
        tried = "neither a joblib/pickle dump nor " if pickled_error is not None else "not "
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # XGBoost appends a C++ stack trace
        raise RuntimeError(f"the model file {path} is {tried}an XGBoost model this xgboost can read: {first}") from None


def _by_name(rows: Any, names: list[str] | None) -> Any:
    """``rows`` with their columns in the order of the model's feature ``names`` when the request's keys are
    exactly those names in another order; otherwise as they are (by position)."""
    columns = getattr(rows, "columns", None)
    if not names or columns is None or tuple(names) == columns or sorted(names) != sorted(columns):
        return rows
    where = [columns.index(name) for name in names]
    return [[row[i] for i in where] for row in rows]
