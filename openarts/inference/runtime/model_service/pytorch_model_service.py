"""``PTServingBaseService``: the base of PyTorch models.

As ModelArts': ``__init__(model_name, model_path)`` with ``model_path`` the package's model *file* (the one
``*.pt``/``*.pth``/``*.pt2`` of ``model/``; the folder when there is none), ``self.model`` for the subclass
to load in its ``__init__``, and ``_inference`` running ``self.model`` on each value of the preprocessed dict
(``{key: self.model(value)}``). What OpenArts adds, so that a subclass overriding nothing still answers:

- ``self.model`` left ``None`` is loaded from ``model_path`` on first use: a TorchScript archive
  (``torch.jit.save``), a ``torch.export`` program (``.pt2``) or a whole pickled ``nn.Module``
  (``torch.save(model)``), on the CPU, in eval mode. A ``state_dict`` needs the network's class: the
  subclass builds the network and loads it (``self.model.load_state_dict(torch.load(model_path))``).
- ``_inference`` turns values that are not tensors (JSON lists and numbers) into float32 tensors and runs the
  model without autograd; a body that is not an object is passed to the model whole.
- ``_postprocess`` turns tensors (also inside dicts, lists and tuples) into lists, so the answer is JSON.

torch is imported on first use only: the runtime imports this module for every model type.
"""

from __future__ import annotations

import os
import threading
import warnings
import zipfile
from typing import Any

from .model_service import SingleNodeService

MODEL_SUFFIXES = (".pt", ".pth", ".pt2")


class PTServingBaseService(SingleNodeService):
    model: Any = None  # also for a subclass whose __init__ does not call this one
    _load_lock = threading.Lock()

    def __init__(self, model_name: str | None = None, model_path: str | None = None) -> None:
        super().__init__(model_name, _model_file(model_path))
        self.model = None

    def _load_model(self) -> Any:
        """``self.model``, loaded from ``model_path`` when the subclass has not set it."""
        if self.model is None:
            with self._load_lock:
                if self.model is None:
                    self.model = load_model(str(self.model_path))
        return self.model

    def _inference(self, data: Any) -> Any:
        import torch

        model = self._load_model()
        with torch.no_grad():
            if isinstance(data, dict):
                return {key: model(_tensor(value)) for key, value in data.items()}
            return model(_tensor(data))

    def _postprocess(self, data: Any) -> Any:
        return _plain(data)


def _model_file(model_path: str | None) -> str | None:
    """The one model file of a model folder (ModelArts gives PyTorch services the file, not the folder)."""
    if model_path is None or not os.path.isdir(model_path):
        return model_path
    found = sorted(name for name in os.listdir(model_path) if name.endswith(MODEL_SUFFIXES))
    return os.path.join(model_path, found[0]) if len(found) == 1 else model_path


def load_model(path: str) -> Any:
    """A ready-to-call model from a TorchScript archive, a ``torch.export`` program or a pickled module."""
    import torch

    if os.path.isdir(path):
        raise RuntimeError(
            f"no single *.pt/*.pth/*.pt2 file in {path} to load: set self.model in customize_service.py's __init__"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated but still loads
        if path.endswith(".pt2"):
            model: Any = torch.export.load(path).module()
            return model
        if _is_torchscript(path):
            return torch.jit.load(path, map_location="cpu").eval()  # type: ignore[no-untyped-call]
        # The package's own pickle, as trusted as its customize_service.py.
        loaded = torch.load(path, map_location="cpu", weights_only=False)  # nosec B614
    if isinstance(loaded, torch.nn.Module):
        return loaded.eval()
    if isinstance(loaded, dict):
        raise RuntimeError(
            f"{os.path.basename(path)} holds a state_dict, not a model: build the network in customize_service.py's "
            "__init__ and load it there (self.model = Net(); self.model.load_state_dict(torch.load(self.model_path)))"
        )
    raise RuntimeError(f"{os.path.basename(path)} holds a {type(loaded).__name__}, not a torch model")


def _is_torchscript(path: str) -> bool:
    """A ``torch.jit.save`` archive: a zip with ``constants.pkl`` (``torch.save`` zips have none)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") for name in archive.namelist())


def _tensor(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value
    return torch.as_tensor(value, dtype=torch.float32)


def _plain(value: Any) -> Any:
    """Tensors (and NumPy arrays) as lists, through dicts, lists and tuples."""
    if hasattr(value, "tolist") and callable(value.tolist):
        if hasattr(value, "detach"):
            value = value.detach().cpu()
        return value.tolist()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
