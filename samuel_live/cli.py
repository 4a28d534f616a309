"""The `samuel-live` command: generate, render, serve, send, schema, devices, prepare, train."""

from __future__ import annotations

import argparse
import logging
import sys

from samuel_live.errors import SamuelError
from samuel_live.render.commands import add_render_commands

log = logging.getLogger("samuel_live")


def cmd_train(args: argparse.Namespace) -> int:
    from samuel_live.train.trainer import load_train_config, train_from_config

    cfg = load_train_config(args.config, args.set)
    res = train_from_config(cfg, resume=args.resume)
    print(f"step {res.step}: train {res.train_loss:.4f}, val {res.val_loss:.4f} "
          f"(best {res.best_val_loss:.4f}), {res.seconds:.0f} s -> {res.checkpoint}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from samuel_live.pipeline import STARTER_MODEL

    folder = STARTER_MODEL.parent
    found = sorted(folder.glob("*.safetensors"))
    if not found:
        print(f"no models installed in {folder}")
        return 1
    for p in found:
        print(p)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="samuel-live", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    add_render_commands(sub)

    t = sub.add_parser("train", help="train a model on prepared shards")
    t.add_argument("config", nargs="?", help="TOML with [train] and [model] tables")
    t.add_argument("--set", action="append", default=[], help="override: key=value")
    t.add_argument("--resume", action="store_true", help="continue from out/train_state.pt")
    t.set_defaults(func=cmd_train)

    m = sub.add_parser("models", help="list installed models")
    m.set_defaults(func=cmd_models)
    _add_optional_commands(sub)
    return parser


def cmd_prepare(args: argparse.Namespace) -> int:
    from samuel_live.train.prepare import run

    manifest = run(args)
    print(f"{manifest['windows']} windows in {len(manifest['shards'])} shards; "
          f"{len(manifest['skipped'])} sources skipped")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from samuel_live.audio.devices import list_devices

    devices = list_devices()
    if not devices:
        print("no audio devices found; start JACK (`.ci/jack.sh start`) or plug in an interface")
        return 1
    for d in devices:
        print(f"{d['index']:>3}  {d['name']}  [{d['hostapi']}]  in {d['max_input_channels']}  "
              f"out {d['max_output_channels']}  {d['default_samplerate']:.0f} Hz")
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

    return send(args.host, args.port, args.address, args.args, args.timeout, args.tcp)


def cmd_schema(args: argparse.Namespace) -> int:
    from samuel_live.osc.commands import schema_text

    print(schema_text("markdown" if args.markdown else "json"))
    return 0


def _add_optional_commands(sub: argparse._SubParsersAction) -> None:
    """Commands whose modules live in other layers (audio devices, training data, OSC)."""
    from samuel_live.train.prepare import add_arguments

    p = sub.add_parser("prepare", help="encode songs / stems / latents / chorales into shards")
    add_arguments(p)
    p.set_defaults(func=cmd_prepare)
    d = sub.add_parser("devices", help="list audio devices and host APIs")
    d.set_defaults(func=cmd_devices)
    sv = sub.add_parser("serve", help="run the engine and its OSC server")
    sv.add_argument("--config", help="TOML config file")
    sv.add_argument("--set", action="append", default=[], help="override: section.key=value")
    sv.add_argument("--host", help="bind address (default 127.0.0.1)")
    sv.add_argument("--udp-port", type=int)
    sv.add_argument("--tcp-port", type=int)
    sv.add_argument("--http-port", type=int, help="OSCQuery namespace over HTTP (0 = off)")
    sv.add_argument("--device", help="auto | cpu | cuda")
    sv.add_argument("--model", help="checkpoint (default: the starter model)")
    sv.add_argument("--render-folder")
    sv.add_argument("--input", help="capture device name, file:PATH or memory:NAME")
    sv.add_argument("--hostapi", help="audio host API, e.g. JACK")
    sv.set_defaults(func=cmd_serve)
    se = sub.add_parser("send", help="send one OSC message and print the replies")
    se.add_argument("address")
    se.add_argument("args", nargs="*")
    se.add_argument("--host", default="127.0.0.1")
    se.add_argument("--port", type=int, default=9000)
    se.add_argument("--tcp", action="store_true")
    se.add_argument("--timeout", type=float, default=10.0)
    se.set_defaults(func=cmd_send)
    sc = sub.add_parser("schema", help="print the OSC namespace (JSON or a Markdown table)")
    sc.add_argument("--markdown", action="store_true")
    sc.set_defaults(func=cmd_schema)
    doc = sub.add_parser("doctor", help="check the machine; print the fix for each problem")
    doc.add_argument("--config", help="TOML config file")
    doc.add_argument("--set", action="append", default=[], help="override: section.key=value")
    doc.set_defaults(func=cmd_doctor)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except SamuelError as exc:
        print(f"samuel-live: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
