"""Process-wide settings the engine runs under, held while any engine of the process runs.

Both are about sharing two cores with torch and the audio and network threads: NumPy without
transparent huge pages on big arrays, and NumPy's BLAS on ``device.NUMPY_BLAS_THREADS``.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable

_LOCK = threading.Lock()
_users = 0
_restore: Callable[[], None] | None = None


def engine_process_settings() -> Callable[[], None]:
    """Apply the settings (``huge_pages_for_arrays(False)`` and ``device.limit_numpy_blas``);
    returns the function that releases this hold. The previous settings come back when the
    last engine of the process has released its hold; a second release counts for nothing."""
    global _users, _restore
    with _LOCK:
        if _users == 0:
            _restore = _apply()
        _users += 1
    held = True

    def release() -> None:
        global _users, _restore
        nonlocal held
        with _LOCK:
            if not held:
                return
            held = False
            _users -= 1
            if _users == 0 and _restore is not None:
                _restore()
                _restore = None

    return release


def _apply() -> Callable[[], None]:
    from samuel_live.device import limit_numpy_blas

    huge_pages = huge_pages_for_arrays(False)
    try:
        restore_blas = limit_numpy_blas()
    except BaseException:
        huge_pages_for_arrays(huge_pages)
        raise

    def restore() -> None:
        restore_blas()
        huge_pages_for_arrays(huge_pages)

    return restore


def huge_pages_for_arrays(enable: bool) -> bool:
    """Whether NumPy asks Linux for transparent huge pages on big arrays; returns the old value.

    The engine turns it off: with THP ``defrag = madvise`` (a common default) a fresh 17 MB
    capture copy may stall in direct compaction while OSC acknowledgements go out. In paired
    bench/osc_latency.py runs it lowered the ack p99 a little (idle 4.6 / 4.5 -> 3.6 / 2.9 ms);
    the large tail had another cause (cancelled jobs kept their copies). Where NumPy has no
    such switch this does nothing and returns False."""
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):  # NumPy 2, NumPy 1
        try:
            switch = getattr(importlib.import_module(name), "_set_madvise_hugepage", None)
        except ImportError:
            continue
        if switch is not None:
            return bool(switch(enable))
    return False
