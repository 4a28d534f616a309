"""Where results may be written and sources read: every name is resolved and checked.

Requests arrive from the network, so an output name is untrusted text. It may only name a file
inside the render folder (sub-folders allowed); ``..``, absolute names and symlinks that lead
out are refused, and names are limited in bytes so the file, its sidecar and their temp files
fit the file system. Checking creates nothing: ``ensure_output_folder`` makes the sub-folders
when the result is written. File sources and models are read only from allowed folders, and a
path outside them gets the same answer as a path that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from samuel_live.errors import ModelError, SamuelError

AUDIO_SUFFIXES = (".wav", ".flac")
_SAFE_PART = re.compile(r"^[\w .,()+=@#-]+$")

MAX_COMPONENT_BYTES = 255
"""A file or folder name's limit on common file systems (ext4, APFS, NTFS), in UTF-8 bytes."""
SIDECAR_SUFFIX = ".json"
"""Appended to a result's file name for its JSON sidecar."""
# Names the writers derive from a result's name (a pid has at most 10 digits):
# the atomic writer's temp file ".<name>.samuel-<pid>-<8 random>.tmp" (samuel_live.atomic), and
# the staged result ".<name>.<pid>-<6 hex>.staged<.wav|.flac>" (samuel_live.render.output), which
# itself is written through a temp file.
_PID_DIGITS = 10
_TEMP_EXTRA = len(".") + len(".samuel-") + _PID_DIGITS + len("-") + 8 + len(".tmp")
_STAGED_EXTRA = len("..") + _PID_DIGITS + len("-") + 6 + len(".staged") + len(".flac")
MAX_FILE_NAME_BYTES = MAX_COMPONENT_BYTES - _TEMP_EXTRA - max(_STAGED_EXTRA, len(SIDECAR_SUFFIX))
"""Longest result file name (suffix included) whose staged, sidecar and temp files still fit."""
MAX_NAME_BYTES = 1024
"""Longest output name as a whole (sub-folders included), in UTF-8 bytes."""


def output_path(folder: Path, name: str, default_suffix: str = ".wav") -> Path:
    """The file ``name`` names inside ``folder``, or SamuelError if it would leave the folder.

    A name without .wav/.flac gets ``default_suffix``. Nothing is created: the whole name is
    checked first, and ``ensure_output_folder`` makes missing sub-folders at write time.
    """
    parts = _name_parts(name)
    last = parts[-1]
    if PurePosixPath(last).suffix.lower() not in AUDIO_SUFFIXES:
        last += default_suffix
    size = len(last.encode("utf-8"))
    if size > MAX_FILE_NAME_BYTES:
        raise SamuelError(
            f"output file name {last[:40]!r}... is {size} bytes in UTF-8; at most "
            f"{MAX_FILE_NAME_BYTES} (suffix included) fit beside its sidecar; use a shorter name"
        )
    root = folder.expanduser().resolve()
    target = root.joinpath(*parts[:-1], last)
    _check_inside(target.resolve(), root, name)
    return target


def ensure_output_folder(folder: Path, path: Path) -> Path:
    """Create ``path``'s missing sub-folders inside ``folder`` and return ``path`` re-checked.

    Call right before writing. The re-check after creating catches a sub-folder that was
    swapped for a symlink leading out since ``output_path`` checked the name.
    """
    root = folder.expanduser().resolve()
    _check_inside(path.resolve(), root, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    resolved = path.parent.resolve() / path.name
    _check_inside(resolved.resolve(), root, str(path))
    return resolved


def _name_parts(name: str) -> list[str]:
    if not name or not name.strip():
        raise SamuelError("output name is empty; give a file name such as take1.wav")
    size = len(name.encode("utf-8", "replace"))
    if size > MAX_NAME_BYTES:
        raise SamuelError(
            f"output name is {size} bytes in UTF-8; at most {MAX_NAME_BYTES}; use a shorter name"
        )
    if "\\" in name or "\x00" in name:
        raise SamuelError(f"output name {name!r:.120} may not contain backslashes or NUL")
    posix = PurePosixPath(name)
    if posix.is_absolute() or name.startswith("~") or re.match(r"^[A-Za-z]:", name):
        raise SamuelError(
            f"output name {name!r:.120} is absolute; give a name relative to the render folder"
        )
    parts = list(posix.parts)
    if any(p in ("..", ".") for p in parts):
        raise SamuelError(f"output name {name!r:.120} may not contain '..' or '.' parts")
    for part in parts:
        if part.startswith(".") or not _SAFE_PART.match(part):
            raise SamuelError(
                f"output name {name!r:.120}: {part!r} must not start with '.' and may use only "
                "letters, digits, spaces and . , ( ) + = @ # - _"
            )
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            raise SamuelError(
                f"output name {name!r:.60}: a folder name is longer than {MAX_COMPONENT_BYTES} "
                "bytes in UTF-8; use a shorter name"
            )
    return parts


def _check_inside(path: Path, root: Path, name: str) -> None:
    if not path.is_relative_to(root):
        raise SamuelError(
            f"output name {name!r:.120} resolves outside the render folder {root} "
            "(a symlink leads out); choose another name"
        )


def _inside_any(text: str, base: Path | None, roots: Iterable[str | Path]) -> tuple[
        Path | None, list[Path]]:
    """(resolved path if it lies inside a root, else None; the resolved roots).

    Containment is decided from the resolved path alone, before anything asks whether the
    file exists.
    """
    allowed = [Path(r).expanduser().resolve() for r in roots if str(r)]
    if not text or "\x00" in text or len(text.encode("utf-8", "replace")) > 4096:
        return None, allowed
    raw = Path(text).expanduser()
    if base is not None and not raw.is_absolute():
        raw = base / raw
    resolved = raw.resolve()
    return (resolved if any(resolved.is_relative_to(r) for r in allowed) else None), allowed


def input_path(text: str, render_folder: Path, allowed_dirs: Iterable[str | Path]) -> Path:
    """A readable audio file inside the render folder or an allowed input folder.

    Relative paths are taken relative to the render folder. Symlinks are resolved before the
    check, so a link inside an allowed folder that points elsewhere is refused. A missing file
    and one outside the allowed folders get the same message.
    """
    if not text:
        raise SamuelError("file source is empty; send file:/absolute/path.wav")
    resolved, roots = _inside_any(text, render_folder.expanduser(),
                                  [render_folder, *allowed_dirs])
    if resolved is None or not resolved.is_file():
        raise SamuelError(
            f"file source {text[:200]} does not exist or is outside the allowed input folders "
            f"({', '.join(map(str, roots))}); put it there or add its folder to "
            "render.allowed_input_dirs"
        )
    return resolved


def model_path(text: str, roots: Iterable[str | Path]) -> Path:
    """A checkpoint (``X.safetensors`` beside ``X.json``) inside one of ``roots``.

    ``roots`` are the shipped models, the configured model's folder, the render folder and
    the allowed input folders. Both files must resolve inside them; a missing checkpoint and
    one outside the roots get the same message, so a network client cannot probe the disk.
    Returns the weights path (its folder resolved, its name kept).
    """
    if not text:
        raise ModelError("model path is empty; send the path of a .safetensors checkpoint")
    roots = list(roots)
    given, allowed = _inside_any(text, None, roots)
    found = None
    if given is not None:
        raw = Path(text).expanduser().absolute()
        stem = raw.parent.resolve() / raw.name
        if stem.suffix in (".safetensors", ".json"):
            stem = stem.with_suffix("")
        weights, meta = stem.with_name(stem.name + ".safetensors"), stem.with_name(
            stem.name + ".json")
        inside = all(_inside_any(str(p), None, roots)[0] is not None for p in (weights, meta))
        if inside and weights.resolve().is_file() and meta.resolve().is_file():
            found = weights
    if found is None:
        raise ModelError(
            f"model {text[:200]} was not found or is outside the allowed folders "
            f"({', '.join(map(str, allowed))}); give a .safetensors checkpoint (with its .json) "
            "there, or add its folder to render.allowed_input_dirs"
        )
    return found
