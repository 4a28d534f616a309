"""VST3 effects: which folders they may come from, and loading them.

A plugin is native code run inside the engine, and a post chain can arrive over the network, so
a plugin is only ever loaded from a configured plugin folder (``post.plugin_dirs``, plus the
platform's standard VST3 folders when ``post.system_vst3`` is set). The path is resolved
(symlinks followed) and checked before anything is opened, and a missing plugin is answered
exactly like a forbidden one, so a request cannot learn which paths exist.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pedalboard

from samuel_live.config import PostSection
from samuel_live.errors import PluginError

PLUGIN_SUFFIX = ".vst3"
MAX_PATH_BYTES = 1024
"""Longest plugin path a chain may name, in UTF-8 bytes."""
MAX_BUNDLE_ENTRIES = 20_000
"""Most files and folders a .vst3 bundle may hold (each symlink in it is checked)."""


def system_vst3_dirs() -> tuple[Path, ...]:
    """The platform's standard VST3 folders (used only when ``post.system_vst3`` is set)."""
    home = Path.home()
    if sys.platform == "darwin":
        return (Path("/Library/Audio/Plug-Ins/VST3"), home / "Library/Audio/Plug-Ins/VST3")
    if sys.platform == "win32":
        common = os.environ.get("COMMONPROGRAMFILES", r"C:\Program Files\Common Files")
        return (Path(common) / "VST3",)
    return (home / ".vst3", Path("/usr/lib/vst3"), Path("/usr/local/lib/vst3"))


def plugin_roots(section: PostSection) -> tuple[Path, ...]:
    """The resolved folders vst3 effects may load from; empty = no plugins allowed."""
    if isinstance(section.plugin_dirs, str) or not all(
            isinstance(d, str) for d in section.plugin_dirs):
        raise PluginError(
            f"post.plugin_dirs must be a list of folder paths, got {section.plugin_dirs!r:.80}"
        )
    dirs: list[str | Path] = [d for d in section.plugin_dirs if d.strip()]
    if section.system_vst3:
        dirs += system_vst3_dirs()
    roots: list[Path] = []
    for d in dirs:
        root = Path(d).expanduser().resolve()
        if root not in roots:
            roots.append(root)
    return tuple(roots)


def _refused(text: str, roots: tuple[Path, ...]) -> PluginError:
    """The one answer for a plugin that is missing, forbidden or not a .vst3 alike."""
    if not roots:
        return PluginError(
            f"vst3 plugin {text[:200]!r} cannot be used: no plugin folders are configured; set "
            "post.plugin_dirs to the folders holding your .vst3 plugins (or post.system_vst3 = "
            "true for the standard VST3 folders)"
        )
    return PluginError(
        f"vst3 plugin {text[:200]!r} is not an installed plugin in the configured plugin folders "
        f"({', '.join(map(str, roots))}); install it there or add its folder to "
        "post.plugin_dirs (post.system_vst3 = true adds the standard VST3 folders)"
    )


def resolve_plugin(text: str, roots: Iterable[Path]) -> Path:
    """The resolved ``.vst3`` plugin ``text`` names inside one of ``roots``, or PluginError.

    A relative name is looked up in each root in turn. The containment check runs before any
    existence check, and both failures give the same message; a bundle whose symlinks lead
    out of the plugin folders is refused alike. No library is opened.
    """
    roots = tuple(Path(r).expanduser().resolve() for r in roots)
    if not text or "\x00" in text or len(text.encode("utf-8", "replace")) > MAX_PATH_BYTES:
        raise _refused(text[:80], roots)
    raw = Path(text).expanduser()
    candidates = [raw] if raw.is_absolute() else [root / raw for root in roots]
    for candidate in candidates:
        resolved = candidate.resolve()
        if not any(resolved.is_relative_to(root) for root in roots):
            continue
        if resolved.suffix.lower() == PLUGIN_SUFFIX and resolved.exists():
            if resolved.is_dir() and not _bundle_stays_inside(resolved, roots):
                break
            return resolved
    raise _refused(text, roots)


def _bundle_stays_inside(bundle: Path, roots: tuple[Path, ...]) -> bool:
    """True if no symlink inside the bundle leads out of the plugin folders (and it is small
    enough to check): the loader follows links to the library it runs."""
    seen = 0
    for folder, dirs, files in os.walk(bundle, followlinks=False):
        seen += len(dirs) + len(files)
        if seen > MAX_BUNDLE_ENTRIES:
            return False
        for name in (*dirs, *files):
            entry = Path(folder, name)
            if entry.is_symlink():
                target = entry.resolve()
                if not any(target.is_relative_to(root) for root in roots):
                    return False
    return True


def load_vst3(effect: Mapping[str, Any], roots: Iterable[Path]) -> pedalboard.Plugin:
    """Load a validated vst3 effect; its path is checked against ``roots`` again first."""
    path = resolve_plugin(effect["path"], roots)
    loader = getattr(pedalboard, "load_plugin", None)
    if loader is None:
        raise PluginError("this platform's pedalboard cannot load VST3 plugins")
    try:
        plugin = loader(str(path), parameter_values=dict(effect["params"]))
    except (ImportError, RuntimeError, ValueError, AttributeError, TypeError) as exc:
        raise PluginError(f"vst3 plugin {path} could not be loaded: {exc}") from exc
    if getattr(plugin, "is_instrument", False):
        raise PluginError(f"vst3 plugin {path} is an instrument; the post chain needs an effect")
    return plugin
