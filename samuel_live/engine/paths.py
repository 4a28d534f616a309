"""Where results may be written and sources read: every name is resolved and checked.

Requests arrive from the network, so an output name is untrusted text. It may only name a file
inside the render folder (sub-folders allowed); ``..``, absolute names and symlinks that lead
out are refused. File sources are read only from the render folder and the configured
``render.allowed_input_dirs``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from samuel_live.errors import SamuelError

AUDIO_SUFFIXES = (".wav", ".flac")
_SAFE_PART = re.compile(r"^[\w .,()+=@#-]+$")
MAX_NAME = 200


def output_path(folder: Path, name: str, default_suffix: str = ".wav") -> Path:
    """The file ``name`` names inside ``folder``, or SamuelError if it would leave the folder.

    A name without .wav/.flac gets ``default_suffix``. Missing sub-folders are created (inside
    the folder only).
    """
    parts = _name_parts(name)
    root = folder.expanduser().resolve()
    target = root.joinpath(*parts)
    if target.suffix.lower() not in AUDIO_SUFFIXES:
        target = target.with_name(target.name + default_suffix)
    _check_inside(target.resolve(), root, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Re-check after mkdir: a sub-folder swapped for a symlink between checks is still caught.
    resolved = target.parent.resolve() / target.name
    _check_inside(resolved.resolve(), root, name)
    return resolved


def _name_parts(name: str) -> list[str]:
    if not name or not name.strip():
        raise SamuelError("output name is empty; give a file name such as take1.wav")
    if len(name) > MAX_NAME:
        raise SamuelError(f"output name is longer than {MAX_NAME} characters")
    if "\\" in name or "\x00" in name:
        raise SamuelError(f"output name {name!r} may not contain backslashes or NUL")
    posix = PurePosixPath(name)
    if posix.is_absolute() or name.startswith("~") or re.match(r"^[A-Za-z]:", name):
        raise SamuelError(
            f"output name {name!r} is absolute; give a name relative to the render folder"
        )
    parts = list(posix.parts)
    if any(p in ("..", ".") for p in parts):
        raise SamuelError(f"output name {name!r} may not contain '..' or '.' parts")
    for part in parts:
        if part.startswith(".") or not _SAFE_PART.match(part):
            raise SamuelError(
                f"output name {name!r}: {part!r} must not start with '.' and may use only "
                "letters, digits, spaces and . , ( ) + = @ # - _"
            )
    return parts


def _check_inside(path: Path, root: Path, name: str) -> None:
    if not path.is_relative_to(root):
        raise SamuelError(
            f"output name {name!r} resolves to {path}, outside the render folder {root} "
            "(a symlink leads out); choose another name"
        )


def input_path(text: str, render_folder: Path, allowed_dirs: Iterable[str | Path]) -> Path:
    """A readable audio file inside the render folder or an allowed input folder.

    Relative paths are taken relative to the render folder. Symlinks are resolved before the
    check, so a link inside an allowed folder that points elsewhere is refused.
    """
    if not text or "\x00" in text:
        raise SamuelError("file source is empty; send file:/absolute/path.wav")
    raw = Path(text).expanduser()
    if not raw.is_absolute():
        raw = render_folder / raw
    roots = [render_folder.expanduser().resolve()]
    roots += [Path(d).expanduser().resolve() for d in allowed_dirs if str(d)]
    resolved = raw.resolve()
    if not any(resolved.is_relative_to(r) for r in roots):
        raise SamuelError(
            f"file source {text} is outside the allowed input folders "
            f"({', '.join(str(r) for r in roots)}); add its folder to render.allowed_input_dirs"
        )
    if not resolved.is_file():
        raise SamuelError(f"file source {resolved} does not exist or is not a file")
    return resolved


def model_path(text: str, roots: Iterable[str | Path]) -> Path:
    """A checkpoint inside one of ``roots`` (the shipped models, the configured model's folder,
    the render folder, the allowed input folders): a network client may not probe the disk."""
    if not text or "\x00" in text:
        raise SamuelError("model path is empty; send the path of a .safetensors checkpoint")
    resolved = Path(text).expanduser().resolve()
    allowed = [Path(r).expanduser().resolve() for r in roots if str(r)]
    if not any(resolved.is_relative_to(r) for r in allowed):
        raise SamuelError(
            f"model {text} is outside the allowed folders ({', '.join(map(str, allowed))}); "
            "put it there or add its folder to render.allowed_input_dirs"
        )
    if not resolved.is_file():
        raise SamuelError(f"model file {resolved} not found; give the path of a checkpoint")
    return resolved
