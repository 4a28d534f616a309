"""The `samuel-live` command: one parser, one error format, one table of exit codes."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import math
import os
import socket
import sys
import traceback
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

from samuel_live import __version__, errors
from samuel_live.config import ServerConfig
from samuel_live.render.commands import add_render_commands

log = logging.getLogger("samuel_live")

PROG = "samuel-live"
EXAMPLE_CONFIG = "example_engine.toml"  # packaged copy of examples/engine.toml


def exit_codes() -> tuple[tuple[int, str, tuple[type[BaseException], ...]], ...]:
    """The one table of exit codes: (code, kind, the exceptions of that kind), first match wins.

    0 is success. An OSError whose errno is ENOSPC counts as disk full.
    """
    return (
        (5, "disk full", (errors.DiskFullError,)),
        (3, "the input audio cannot be read or used", (errors.AudioInputError,)),
        (4, "model or codec missing, corrupt or mismatched", (errors.ModelError,
                                                              errors.CodecError)),
        (6, "audio device missing or unusable", (errors.AudioDeviceError,)),
        (7, "server or network: a port cannot be bound, a peer is gone",
         (errors.BindError, errors.OscPacketError, ConnectionError, socket.gaierror,
          TimeoutError)),
        (2, "usage: unknown command, bad, missing or out-of-range option",
         (errors.InvalidArgumentError,)),
        (1, "any other error (doctor: a check failed)", (errors.SamuelError, OSError)),
        (130, "interrupted (Ctrl-C)", (KeyboardInterrupt,)),
    )


def exit_code(exc: BaseException) -> int:
    """The exit code for ``exc`` from ``exit_codes()``; 1 when no row names it."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return 5
    for code, _, kinds in exit_codes():
        if isinstance(exc, kinds):
            return code
    return 1


def _exit_code_help() -> str:
    rows = [(0, "success (also when a reader such as `| head` stops early)")]
    rows += [(code, kind) for code, kind, _ in exit_codes()]
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {kind}" for code, kind in sorted(rows))


def error(message: str) -> None:
    """Print ``message`` in the CLI's one error format."""
    print(f"{PROG}: error: {message}", file=sys.stderr)


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors in the CLI's one format: `samuel-live: error: ...`."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        command = self.prog.removeprefix(PROG).strip()
        error(f"{command}: {message}" if command else message)
        raise SystemExit(2)


def cmd_train(args: argparse.Namespace) -> int:
    from samuel_live.train.trainer import load_train_config, train_from_config

    cfg = load_train_config(args.config, args.set)
    res = train_from_config(cfg, resume=args.resume)
    print(f"step {res.step}: train {res.train_loss:.4f}, val {res.val_loss:.4f} "
          f"(best {res.best_val_loss:.4f}), {res.seconds:.0f} s -> {res.checkpoint}")
    return 0


def parameter_count(weights: Path) -> int:
    """Parameters in a .safetensors file, from its header alone (no tensor is read)."""
    with open(weights, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    return sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")


def installed_models(folder: Path) -> list[dict[str, Any]]:
    """Name, parameters, codec, size in bytes and short hash of every model in ``folder``."""
    from samuel_live.model.checkpoint import file_hash

    rows = []
    for weights in sorted(folder.glob("*.safetensors")):
        meta = weights.with_suffix(".json")
        try:
            codec = json.loads(meta.read_text())["codec"] if meta.is_file() else "(no .json)"
            params: int | None = parameter_count(weights)
        except (OSError, ValueError, KeyError, TypeError):
            codec, params = "(unreadable)", None
        rows.append({"name": weights.stem, "parameters": params, "codec": codec,
                     "bytes": weights.stat().st_size, "hash": file_hash(weights)})
    return rows


def cmd_models(args: argparse.Namespace) -> int:
    from samuel_live.pipeline import STARTER_MODEL

    folder = STARTER_MODEL.parent
    rows = installed_models(folder)
    if not rows:
        raise errors.ModelError(f"no models installed in {folder}; reinstall the package or "
                                "train one with `samuel-live train`")
    print(f"models in {folder} (generate/serve --model FOLDER/NAME.safetensors):")
    print(f"{'name':<16} {'parameters':>10}  {'codec':<10} {'size':>8}  sha256")
    for r in rows:
        params = f"{r['parameters'] / 1e6:.2f}M" if r["parameters"] is not None else "?"
        print(f"{r['name']:<16} {params:>10}  {r['codec']:<10} "
              f"{r['bytes'] / 1e6:>5.1f} MB  {r['hash']}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    print(example_config(), end="")
    return 0


def example_config() -> str:
    """The documented example engine.toml (every key at its default)."""
    return resources.files("samuel_live").joinpath(EXAMPLE_CONFIG).read_text(encoding="utf-8")


def cmd_prepare(args: argparse.Namespace) -> int:
    from samuel_live.train.prepare import run

    manifest = run(args)
    print(f"{manifest['windows']} windows in {len(manifest['shards'])} shards; "
          f"{len(manifest['skipped'])} sources skipped")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from samuel_live.audio.devices import NO_AUDIO_HINT, list_devices

    devices = list_devices()
    if not devices:
        raise errors.AudioDeviceError(f"no audio devices found; {NO_AUDIO_HINT}")
    for d in devices:
        print(f"{d['index']:>3}  {d['name']}  [{d['hostapi']}]  in {d['max_input_channels']}  "
              f"out {d['max_output_channels']}  {d['default_samplerate']:.0f} Hz")
    if not any(d["max_input_channels"] for d in devices):
        error(f"no input device: live capture is unavailable; {NO_AUDIO_HINT}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from samuel_live.config import load_config
    from samuel_live.doctor import report, run_checks

    return report(run_checks(load_config(args.config, args.set)))


def cmd_serve(args: argparse.Namespace) -> int:
    from samuel_live.config import load_config
    from samuel_live.osc.commands import serve

    overrides = list(args.set)
    for flag, key in (("host", "server.host"), ("udp_port", "server.udp_port"),
                      ("tcp_port", "server.tcp_port"), ("http_port", "server.http_port"),
                      ("device", "model.device"), ("model", "model.path"),
                      ("render_folder", "render.folder"), ("input", "capture.device"),
                      ("hostapi", "capture.hostapi")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value}")
    return serve(load_config(args.config, overrides))


def cmd_send(args: argparse.Namespace) -> int:
    from samuel_live.osc.commands import send

    return send(args.host, send_port(args), args.address, args.args, args.timeout, args.tcp)


def send_port(args: argparse.Namespace) -> int:
    """`send --port`, else the server's default port for the chosen transport."""
    return args.port or (ServerConfig.tcp_port if args.tcp else ServerConfig.udp_port)


def cmd_schema(args: argparse.Namespace) -> int:
    from samuel_live.osc.commands import schema_text

    print(schema_text("markdown" if args.markdown else "json"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Sing, and get an accompaniment back: SAMUeL "
                     "vocal-to-accompaniment diffusion\nfor files, batches of stems and live "
                     "work over OSC.\nNew here? Try `samuel-live doctor`.",
                     epilog=_exit_code_help(), formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("-V", "--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log debug messages; show the traceback of an error")
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")

    add_render_commands(sub)
    _add_engine_commands(sub)
    _add_setup_commands(sub)
    _add_training_commands(sub)
    for command in sub.choices.values():  # `samuel-live generate ... -v` works too
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                             help="log debug messages; show the traceback of an error")
    return parser


def _add_engine_commands(sub: argparse._SubParsersAction) -> None:
    sv = sub.add_parser("serve", help="run the engine and its OSC server")
    sv.add_argument("--config", help="TOML config file (`samuel-live config` writes one)")
    sv.add_argument("--set", action="append", default=[], help="override: section.key=value")
    sv.add_argument("--host", help=f"bind address (default {ServerConfig.host})")
    sv.add_argument("--udp-port", type=int, help=f"default {ServerConfig.udp_port}")
    sv.add_argument("--tcp-port", type=int, help=f"default {ServerConfig.tcp_port}; 0 = off")
    sv.add_argument("--http-port", type=int, help="OSCQuery namespace over HTTP (default "
                    f"{ServerConfig.http_port}; 0 = off)")
    sv.add_argument("--device", help="auto | cpu | cuda")
    sv.add_argument("--model", help="checkpoint (default: the starter model)")
    sv.add_argument("--render-folder")
    sv.add_argument("--input", help="capture device name, file:PATH or memory:NAME")
    sv.add_argument("--hostapi", help="audio host API, e.g. JACK")
    sv.add_argument("--log-file", metavar="PATH",
                    help="log to PATH, rotated at 10 MiB with 5 old files kept (default: stderr)")
    sv.set_defaults(func=cmd_serve)
    se = sub.add_parser("send", help="send one OSC message to a running engine, print replies")
    se.add_argument("address", help="e.g. /samuel/ping (`samuel-live schema` lists them)")
    se.add_argument("args", nargs="*", help="the message's arguments, e.g. 1 for /samuel/ping")
    se.add_argument("--host", default=ServerConfig.host, help="default %(default)s")
    se.add_argument("--port", type=int, help=f"default {ServerConfig.udp_port}, or "
                    f"{ServerConfig.tcp_port} with --tcp")
    se.add_argument("--tcp", action="store_true", help="send over TCP instead of UDP")
    se.add_argument("--timeout", type=float, default=10.0,
                    help="seconds to wait for the final reply (default %(default)s)")
    se.set_defaults(func=cmd_send)
    sc = sub.add_parser("schema", help="print the OSC namespace (JSON or a Markdown table)")
    sc.add_argument("--markdown", action="store_true")
    sc.set_defaults(func=cmd_schema)


def _add_setup_commands(sub: argparse._SubParsersAction) -> None:
    doc = sub.add_parser("doctor", help="check this machine; print the fix for each problem",
                         description="Exit status 1 when a check fails.")
    doc.add_argument("--config", help="TOML config file to check with")
    doc.add_argument("--set", action="append", default=[], help="override: section.key=value")
    doc.set_defaults(func=cmd_doctor)
    d = sub.add_parser("devices", help="list audio devices and host APIs")
    d.set_defaults(func=cmd_devices)
    m = sub.add_parser("models", help="list installed models: parameters, codec, size, hash")
    m.set_defaults(func=cmd_models)
    c = sub.add_parser("config", help="print an example engine.toml with every key explained",
                       description="Save it, edit it, use it:\n  samuel-live config > "
                       "engine.toml\n  samuel-live serve --config engine.toml",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.set_defaults(func=cmd_config)


def _add_training_commands(sub: argparse._SubParsersAction) -> None:
    from samuel_live.train.prepare import add_arguments

    p = sub.add_parser("prepare", help="encode songs / stems / latents / chorales into shards")
    add_arguments(p)
    p.set_defaults(func=cmd_prepare)
    t = sub.add_parser("train", help="train a model on prepared shards")
    t.add_argument("config", nargs="?", help="TOML with [train] and [model] tables")
    t.add_argument("--set", action="append", default=[], help="override: key=value")
    t.add_argument("--resume", action="store_true", help="continue from out/train_state.pt")
    t.set_defaults(func=cmd_train)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the exit-time flush into a closed pipe stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (tests)
        pass


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FILE_BYTES, LOG_FILE_BACKUPS = 10 * 1024 * 1024, 5  # a --log-file rotates at 10 MiB, 5 kept


def setup_logging(verbose: bool, log_file: str | None = None) -> None:
    """Log to stderr, or to ``log_file`` rotated at ``LOG_FILE_BYTES`` (``LOG_FILE_BACKUPS``
    old files kept), so a flood of junk can never fill the disk."""
    import logging.handlers

    handler: logging.Handler
    if log_file:
        handler = logging.handlers.RotatingFileHandler(
            Path(log_file).expanduser(), maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS,
            encoding="utf-8")
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler],
                        force=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    setup_logging(args.verbose, getattr(args, "log_file", None))
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # the reader left (`samuel-live schema | head`): not an error
        _silence_stdout()
        return 0
    except (errors.SamuelError, OSError, KeyboardInterrupt) as exc:
        if args.verbose:
            traceback.print_exc()
        error(_message(exc))
        return exit_code(exc)


if __name__ == "__main__":
    sys.exit(main())
