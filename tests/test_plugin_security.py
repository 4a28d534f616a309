"""VST3 effects load native code: only from the configured plugin folders, and a request cannot
tell a missing plugin from a forbidden one. A real shared library whose constructor writes a
mark file stands in for a hostile plugin (built with gcc; skipped where gcc is absent)."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_engine import TINY, make_config, sine
from test_osc_server import PORTS, Listener

from samuel_live.audio.sources import MemorySource
from samuel_live.config import PostSection
from samuel_live.engine.engine import Engine
from samuel_live.errors import PluginError, SamuelError
from samuel_live.osc.server import OscServer
from samuel_live.pipeline import Accompanist
from samuel_live.post import PostChain, build_chain, check_post, plugin_roots

_SOURCE = """#include <stdio.h>
__attribute__((constructor)) static void samuel_test_mark(void) {
    FILE *f = fopen(%s, "w");
    if (f) { fputs("constructor ran\\n", f); fclose(f); }
}
"""


def _build_library(out: Path, mark: Path) -> Path:
    """Compile a shared library whose constructor writes ``mark`` when it is loaded."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed: cannot build the test plugin library")
    if not sys.platform.startswith("linux"):
        pytest.skip("the test plugin is built as a Linux VST3 bundle")
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.with_suffix(".c")
    src.write_text(_SOURCE % json.dumps(str(mark)))
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(out), str(src)], check=True,
                   capture_output=True)
    return out


def hostile_bundle(folder: Path, name: str, mark: Path) -> Path:
    """A ``NAME.vst3`` bundle in ``folder`` laid out as pedalboard (JUCE) loads it on Linux."""
    bundle = folder / f"{name}.vst3"
    _build_library(bundle / "Contents" / f"{platform.machine()}-linux" / f"{name}.so", mark)
    return bundle


def hostile_file(folder: Path, name: str, mark: Path) -> Path:
    """The same library as a single file named ``NAME.vst3``."""
    return _build_library(folder / f"{name}.vst3", mark)


def vst3(path: str | Path) -> dict[str, object]:
    return {"type": "vst3", "path": str(path), "params": {}}


def custom(effect: dict[str, object], *dirs: Path, system: bool = False) -> PostSection:
    return PostSection(preset="custom", chain=(effect,), plugin_dirs=tuple(map(str, dirs)),
                       system_vst3=system)


def test_library_outside_the_plugin_folders_is_never_opened(tmp_path: Path) -> None:
    allowed, elsewhere, mark = tmp_path / "plugins", tmp_path / "elsewhere", tmp_path / "mark"
    allowed.mkdir()
    bundle = hostile_bundle(elsewhere, "evil", mark)
    single = hostile_file(elsewhere / "flat", "evil", mark)
    os.symlink(bundle, allowed / "linked.vst3")  # a link inside that leads out
    asks = [bundle, single, allowed / "linked.vst3", "linked.vst3", "../elsewhere/evil.vst3",
            allowed / ".." / "elsewhere" / "evil.vst3"]
    for ask in asks:
        for dirs in ((allowed,), ()):
            section = custom(vst3(ask), *dirs)
            with pytest.raises(PluginError, match="plugin_dirs"):
                check_post(section)
            with pytest.raises(PluginError, match="plugin_dirs"):
                build_chain(section)
            with pytest.raises(PluginError, match="plugin_dirs"):
                PostChain([vst3(ask)], plugin_dirs=plugin_roots(section))
    assert not mark.exists(), "a library outside the plugin folders was loaded"


def test_library_inside_a_plugin_folder_passes_the_path_rules(tmp_path: Path) -> None:
    allowed, mark = tmp_path / "plugins", tmp_path / "mark"
    hostile_bundle(allowed, "inside", mark)
    for ask in (allowed / "inside.vst3", "inside.vst3"):
        assert check_post(custom(vst3(ask), allowed)) == (vst3(ask),)
        assert not mark.exists(), "check_post must not load anything"
    with pytest.raises(PluginError, match="could not be loaded"):
        build_chain(custom(vst3("inside.vst3"), tmp_path / "none", allowed))
    assert mark.exists(), "a plugin in an allowed folder was not even tried"


def test_standard_vst3_folders_only_when_opted_in(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    bundle = tmp_path / ".vst3" / "fx.vst3"
    bundle.mkdir(parents=True)
    with pytest.raises(PluginError, match="no plugin folders"):
        check_post(custom(vst3(bundle)))
    check_post(custom(vst3(bundle), system=True))
    check_post(custom(vst3("fx.vst3"), system=True))


def test_missing_and_forbidden_plugins_get_the_same_answer(tmp_path: Path) -> None:
    allowed, outside = tmp_path / "plugins", tmp_path / "outside"
    for folder in (allowed, outside):
        folder.mkdir()
    (outside / "real.vst3").mkdir()
    (allowed / "notes.txt").write_text("not a plugin")
    asks = [outside / "real.vst3", outside / "ghost.vst3", allowed / "ghost.vst3",
            tmp_path / "no" / "such" / "dir" / "x.vst3", allowed / "notes.txt", "/etc/passwd"]
    for dirs in ((allowed,), ()):
        answers = set()
        for ask in asks:
            with pytest.raises(PluginError) as err:
                check_post(custom(vst3(ask), *dirs))
            answers.add(str(err.value).replace(repr(str(ask)), "<path>"))
        assert len(answers) == 1, answers


def test_osc_post_set_with_an_outside_plugin_is_refused_unopened(tmp_path: Path) -> None:
    allowed, mark = tmp_path / "plugins", tmp_path / "mark"
    allowed.mkdir()
    bundle = hostile_bundle(tmp_path / "elsewhere", "evil", mark)
    config = make_config(tmp_path, *PORTS, f"post.plugin_dirs={allowed}")
    engine = Engine(config, accompanist=Accompanist.random(TINY), capture=MemorySource(sine()),
                    warm_up=False)
    engine.start()
    server = OscServer(engine, config.server).start()
    peer = Listener()
    try:
        peer.send(server.udp_port, "/samuel/post/set", json.dumps([vst3(bundle)]))
        error = peer.wait("/samuel/error", timeout=20.0)
        assert error.args[0] == "/samuel/post/set" and "plugin_dirs" in error.args[1]
        time.sleep(0.3)  # a load on another thread would have written the mark by now
        assert not mark.exists(), "the engine loaded a library from outside the plugin folders"
        assert engine.post_chain() == []  # the clean chain is still in place
    finally:
        peer.close()
        server.close()
        engine.close()


def test_plugin_path_text_is_bounded(tmp_path: Path) -> None:
    for ask in ("", "x" * 5000 + ".vst3", "a\x00b.vst3"):
        with pytest.raises(SamuelError):
            check_post(custom(vst3(ask), tmp_path))


def test_a_bundle_whose_library_links_out_is_refused(tmp_path: Path) -> None:
    allowed, mark = tmp_path / "plugins", tmp_path / "mark"
    library = _build_library(tmp_path / "elsewhere" / "evil.so", mark)
    inner = allowed / "fx.vst3" / "Contents" / f"{platform.machine()}-linux"
    inner.mkdir(parents=True)
    os.symlink(library, inner / "fx.so")
    with pytest.raises(PluginError, match="plugin_dirs"):
        check_post(custom(vst3("fx.vst3"), allowed))
    with pytest.raises(PluginError, match="plugin_dirs"):
        PostChain([vst3("fx.vst3")], plugin_dirs=(allowed.resolve(),))
    assert not mark.exists(), "a library linked from inside a bundle was loaded"


def test_plugin_dirs_must_be_folder_paths(tmp_path: Path) -> None:
    for dirs in ((1,), str(tmp_path)):
        section = PostSection(preset="custom", chain=(vst3("x.vst3"),), plugin_dirs=dirs)  # type: ignore[arg-type]
        with pytest.raises(PluginError, match="list of folder paths"):
            check_post(section)
