"""The event that wakes the workflow controller: set after a commit that gives it something to do."""

from __future__ import annotations

import threading

wake = threading.Event()
