"""``import log; logger = log.getLogger(__name__)``, as ModelArts inference examples write it."""

from __future__ import annotations

import logging

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
getLogger = logging.getLogger  # noqa: N816 - the name ModelArts code calls
