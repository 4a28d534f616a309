"""Atomic file writes: a temp file beside the target, flushed, fsynced, then renamed.

Nothing is ever visible under a final name half-written; a failed write leaves the old file
(if any) in place and no temp file behind. A full disk raises ``DiskFullError`` naming the
folder. Temp files left by a killed writer are removed by ``sweep_stale_temps``. Standard
library only, so model and training code can use it on a bare GPU box.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from samuel_live.errors import DiskFullError, SamuelError

STALE_TEMP_AGE_S = 60.0
"""A temp file untouched this long is stale even if a process with its writer's pid runs."""

_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
# ".<final name>.samuel-<writer pid>-<8 mkstemp characters>.tmp"
_TEMP_NAME = re.compile(r"^\..+\.samuel-(?P<pid>\d+)-[a-z0-9_]{8}\.tmp$")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temp path beside ``path``; whatever the block writes there replaces ``path``."""
    path = Path(path)
    if not path.parent.is_dir():
        raise SamuelError(f"cannot write {path}: folder {path.parent} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{path.name}.samuel-{os.getpid()}-", suffix=".tmp", dir=path.parent
        )
    except OSError as exc:
        if exc.errno in _NO_ROOM:
            raise _no_room(path, exc) from exc
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result should read like any file
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in _NO_ROOM:
            raise _no_room(path, exc) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary file object whose content replaces ``path`` only if the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        yield f


def atomic_write_bytes(path: str | Path, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_file(path) as f:
        f.write(data)
    return Path(path)


def sweep_stale_temps(folder: str | Path, max_age_s: float = STALE_TEMP_AGE_S) -> list[Path]:
    """Remove the temp files our atomic writes left in ``folder`` (not its subfolders).

    Only names made by ``atomic_path`` are touched, and only when their writer process is
    gone or they were last written more than ``max_age_s`` ago. Returns the removed paths;
    a missing or unreadable folder removes nothing.
    """
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None:
            continue
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
            if age > max_age_s or not _pid_alive(int(match["pid"])):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # a folder, vanished meanwhile, or not ours to remove
            continue
    return removed


def _pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (always True where that cannot be asked)."""
    if os.name != "posix":
        return True  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


def _no_room(path: Path, exc: OSError) -> DiskFullError:
    folder = path.parent.resolve()
    if exc.errno == errno.EFBIG:
        what = f"{path.name} is too large for the file system of {folder} or the file-size limit"
    elif exc.errno == errno.EDQUOT:
        what = f"the disk quota for {folder} is used up"
    else:
        what = f"the disk holding {folder} is full"
    return DiskFullError(
        f"cannot write {path.name}: {what} ({exc.strerror}); "
        f"free space on {folder} or choose another output folder"
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(folder: Path) -> None:
    """Persist the rename itself (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
