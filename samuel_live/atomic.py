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

_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_NEARLY_FULL_BYTES = 1 << 20  # a write that fails with less free than this ran out of room
# ".<final name>.samuel-<writer pid>-<8 mkstemp characters>.tmp"
_TEMP_NAME = re.compile(
    r"^\..+\.(?:samuel-(?P<pid>\d+)-[a-z0-9_]{8}\.tmp"
    r"|(?P<stager>\d+)-[0-9a-f]{6}\.staged\.(?:wav|flac))$"
)  # atomic_path's temp files, and results waiting for their sidecar (samuel_live.render.take)


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
            raise _no_room(path, exc.errno) from exc
        raise
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result should read like any file
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        # libraries report a full disk their own way (soundfile: AssertionError, torch:
        # RuntimeError, safetensors: SafetensorError), so also ask the file system
        code = _no_room_errno(exc)
        if code is None and _foreign(exc) and _nearly_full(path.parent):
            code = errno.ENOSPC
        tmp.unlink(missing_ok=True)
        if code is not None:
            raise _no_room(path, code) from exc
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
            if age > max_age_s or not _pid_alive(int(match["pid"] or match["stager"])):
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


def _no_room_errno(exc: BaseException) -> int | None:
    """ENOSPC/EDQUOT/EFBIG if ``exc`` or an exception it came from says so, else None."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, OSError) and link.errno in _NO_ROOM:
            return link.errno
        text = str(link)
        for code in _NO_ROOM:
            if os.strerror(code) in text or f"os error {code})" in text:  # C and Rust wording
                return code
        link = link.__cause__ or link.__context__
    return None


def _foreign(exc: BaseException) -> bool:
    """An error from a library (ours already say what went wrong; Ctrl-C is no write error)."""
    return isinstance(exc, Exception) and not isinstance(exc, SamuelError)


def _nearly_full(folder: Path) -> bool:
    """Whether the file system holding ``folder`` has (almost) no space left for users."""
    try:
        st = os.statvfs(folder)
    except (AttributeError, OSError):  # no statvfs on Windows
        return False
    return st.f_bavail * st.f_frsize < _NEARLY_FULL_BYTES


def _no_room(path: Path, code: int) -> DiskFullError:
    folder = path.parent.resolve()
    if code == errno.EFBIG:
        what = f"{path.name} is too large for the file system of {folder} or the file-size limit"
    elif code == errno.EDQUOT:
        what = f"the disk quota for {folder} is used up"
    else:
        what = f"the disk holding {folder} is full"
    return DiskFullError(
        f"cannot write {path.name}: {what} ({os.strerror(code)}); "
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
