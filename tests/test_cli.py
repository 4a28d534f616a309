"""The CLI as a new user meets it: help, version, one error format, exit codes, pipes, the
example config, `models`, `devices`, and messages that only name commands that exist."""

from __future__ import annotations

import ast
import dataclasses
import errno
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from safetensors.torch import load_file

import samuel_live
from samuel_live import errors
from samuel_live.cli import (
    build_parser,
    example_config,
    exit_code,
    exit_codes,
    installed_models,
    main,
    send_port,
)
from samuel_live.config import Config, ServerConfig, load_config
from samuel_live.model.checkpoint import file_hash

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "samuel_live"
EXAMPLE = ROOT / "examples" / "engine.toml"


def _commands() -> dict[str, object]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return dict(sub.choices)


def _literals() -> list[tuple[Path, int, str]]:
    """Every string literal in the package but docstrings (f-string pieces too), with file
    and line."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and id(node) not in docs:
                found.append((path.relative_to(ROOT), node.lineno, node.value))
    return found


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"samuel-live {samuel_live.__version__}\n"


def test_help_lists_every_command_with_its_help_and_the_exit_codes():
    text = build_parser().format_help()
    for name in _commands():
        line = re.search(rf"^ {{2,}}{re.escape(name)} +(\S.*)$", text, re.M)
        assert line, f"`{name}` is missing from `samuel-live --help`"
    for code, kind, _ in exit_codes():
        assert re.search(rf"^ +{code} +{re.escape(kind)}$", text, re.M), (code, kind)


def test_no_command_shows_the_help(capsys):
    assert main([]) == 2
    assert "commands:" in capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    (["bogus"], "samuel-live: error: argument COMMAND: invalid choice: 'bogus'"),
    (["send"], "samuel-live: error: send: the following arguments are required: address"),
])
def test_usage_errors_use_the_one_format(argv, says, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    assert says in capsys.readouterr().err.splitlines()[-1]


def test_exit_codes_per_kind():
    expected = {
        errors.AudioInputError("x"): 3,
        errors.ModelError("x"): 4,
        errors.CodecError("x"): 4,
        errors.DiskFullError("x"): 5,
        OSError(errno.ENOSPC, "No space left on device"): 5,
        errors.AudioDeviceError("x"): 6,
        errors.BindError("udp", "127.0.0.1", 9000, "in use"): 7,
        ConnectionRefusedError(): 7,
        errors.InvalidArgumentError("x"): 2,
        errors.SamuelError("x"): 1,
        PermissionError(errno.EACCES, "Permission denied"): 1,
        KeyboardInterrupt(): 130,
    }
    assert {type(e).__name__: exit_code(e) for e in expected} == {
        type(e).__name__: code for e, code in expected.items()}
    codes = [code for code, _, _ in exit_codes()]
    assert len(codes) == len(set(codes)), "one row per code"


def test_a_failing_command_prints_one_line_and_its_kind(tmp_path, capsys):
    missing = tmp_path / "engine.toml"
    assert main(["doctor", "--config", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err == (f"samuel-live: error: config file {missing} not found; write one with "
                   "`samuel-live config`\n")
    assert main(["train", str(missing)]) == 1  # an OSError gets the same format, no traceback
    assert capsys.readouterr().err.startswith("samuel-live: error: No such file or directory")


@pytest.mark.parametrize("unbuffered", ["", "1"])
def test_a_closed_pipe_ends_quietly(unbuffered):
    """`samuel-live schema --markdown | head -1`: the reader leaves before we write. Buffered,
    the write fails only when flushed; unbuffered, while printing."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if unbuffered:
        env["PYTHONUNBUFFERED"] = unbuffered
    proc = subprocess.Popen([sys.executable, "-m", "samuel_live.cli", "schema", "--markdown"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env)
    proc.stdout.close()
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err.decode()) == (0, "")


def test_every_command_named_in_a_message_exists():
    commands = set(_commands())
    named = [(where, line, m.group(1)) for where, line, text in _literals()
             for m in re.finditer(r"samuel-live ([a-z][a-z-]*)\b(?![:-])", text)]
    assert named, "the scan found no `samuel-live <command>` at all"
    assert [n for n in named if n[2] not in commands] == []


def test_every_osc_address_named_in_a_message_exists():
    from samuel_live.osc.schema import load_namespace

    namespace = load_namespace()
    named = [(where, line, m.group(0)) for where, line, text in _literals()
             for m in re.finditer(r"/samuel(?:/[a-z_]+)+", text)]
    assert len(named) > 10
    assert [n for n in named if namespace.node(n[2]) is None] == []


def test_no_message_points_at_the_repository_ci_scripts():
    assert [(w, n) for w, n, text in _literals() if ".ci/" in text] == []


def test_config_prints_the_example_and_it_covers_every_key(capsys, tmp_path):
    assert main(["config"]) == 0
    text = capsys.readouterr().out
    assert text == EXAMPLE.read_text() == example_config()
    (tmp_path / "engine.toml").write_text(text)
    assert load_config(tmp_path / "engine.toml") == Config()  # every value is the default
    # Keys whose default is "not set" are shown as `# key = example`: set them all.
    every = re.sub(r"^# ([a-z_]+ = )", r"\1", text, flags=re.M)
    (tmp_path / "every.toml").write_text(every)
    load_config(tmp_path / "every.toml")
    tables = tomllib.loads(every)
    for section in dataclasses.fields(Config):
        keys = {f.name for f in dataclasses.fields(section.default_factory())}
        assert set(tables.get(section.name, {})) == keys, section.name
    for section in dataclasses.fields(Config):
        assert f"[{section.name}]" in text


def test_models_lists_name_parameters_codec_size_and_hash(capsys):
    starter = PACKAGE / "models" / "starter.safetensors"
    rows = installed_models(starter.parent)
    row = next(r for r in rows if r["name"] == "starter")
    n = sum(t.numel() for t in load_file(str(starter)).values())
    assert row == {"name": "starter", "parameters": n, "codec": "harmonic",
                   "bytes": starter.stat().st_size, "hash": file_hash(starter)}
    assert main(["models", "-v"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("starter "))
    assert line.split() == ["starter", f"{n / 1e6:.2f}M", "harmonic",
                            f"{starter.stat().st_size / 1e6:.1f}", "MB", file_hash(starter)]


def test_models_counts_every_tensor_and_names_a_missing_meta(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(3, 4), "b": torch.zeros(5)}, str(tmp_path / "m.safetensors"))
    (row,) = installed_models(tmp_path)
    assert (row["name"], row["parameters"], row["codec"]) == ("m", 17, "(no .json)")


def test_devices_says_how_to_get_audio(capsys):
    from samuel_live.audio.devices import NO_AUDIO_HINT, list_devices

    for needed in ("JACK", "PipeWire", "interface", "`samuel-live doctor`"):
        assert needed in NO_AUDIO_HINT
    code = main(["devices"])
    out = capsys.readouterr()
    if list_devices():
        assert code == 0 and out.out.strip()
    else:
        assert code == 6
        assert out.err == f"samuel-live: error: no audio devices found; {NO_AUDIO_HINT}\n"


def test_send_over_tcp_defaults_to_the_tcp_port():
    parse = build_parser().parse_args
    assert send_port(parse(["send", "/samuel/ping"])) == ServerConfig.udp_port
    assert send_port(parse(["send", "/samuel/ping", "--tcp"])) == ServerConfig.tcp_port
    assert send_port(parse(["send", "/samuel/ping", "--tcp", "--port", "9100"])) == 9100


def test_log_file_rotates_so_junk_cannot_fill_the_disk(tmp_path, monkeypatch):
    import logging

    from samuel_live import cli

    monkeypatch.setattr(cli, "LOG_FILE_BYTES", 2000)
    log_file = tmp_path / "serve.log"
    try:
        cli.setup_logging(False, str(log_file))
        for i in range(400):
            logging.getLogger("samuel_live.osc").warning("junk packet %d %s", i, "x" * 40)
        logging.shutdown()
    finally:
        cli.setup_logging(False)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files[0] == "serve.log" and len(files) == 1 + cli.LOG_FILE_BACKUPS
    assert all(p.stat().st_size <= 2100 for p in tmp_path.iterdir())
    assert "junk packet 399" in log_file.read_text()
    assert cli.build_parser().parse_args(["serve", "--log-file", "x.log"]).log_file == "x.log"
