"""Regenerate what is derived from the OSC schema: docs/osc.md and the Max for Live device.

    python daw_templates/build.py          # write the files
    python daw_templates/build.py --check  # exit 1 if any committed file is out of date
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from samuel_live.osc.schema import load_namespace

ROOT = Path(__file__).resolve().parent.parent
OSC_DOC = ROOT / "docs" / "osc.md"

HEADER = """# OSC address space

Generated from `osc_schema/namespace.json` by `python daw_templates/build.py`; do not edit.
The same table prints with `samuel-live schema --markdown`; the machine-readable form is the
JSON itself (OSCQuery style), also served over HTTP on `server.http_port`.

Arguments in brackets are optional (trailing). Type tags: `i` int, `f` float, `s` string;
numbers may be sent as int or float (Pure Data sends floats). Every command is answered on
the address in the Reply column, or with `/samuel/error address message job`.

"""


def osc_markdown() -> str:
    """docs/osc.md: a short header and the schema's Markdown table."""
    return HEADER + load_namespace().markdown_table()


def _device_builder():
    spec = importlib.util.spec_from_file_location(
        "build_device", ROOT / "daw_templates" / "ableton" / "build_device.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def outputs() -> dict[Path, bytes]:
    """Every generated file and its expected bytes."""
    files = {OSC_DOC: osc_markdown().encode()}
    files.update(_device_builder().outputs())
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="regenerate docs/osc.md and the M4L device")
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    args = parser.parse_args(argv)
    files = outputs()
    stale = [p for p, data in files.items() if not p.is_file() or p.read_bytes() != data]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date; run python daw_templates/build.py",
                  file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
