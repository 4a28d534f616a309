"""The OSC address space as data: load ``namespace.json`` and validate messages against it.

The namespace is an OSCQuery-style tree (FULL_PATH, CONTENTS, TYPE, ACCESS, RANGE, DESCRIPTION,
EXTENDED_TYPE) with three additions of ours: ARGS (argument names), MIN_ARGS (how many leading
arguments are required; the rest are optional) and REPLY (the address the server answers on).
ACCESS 2 marks a command a client sends, ACCESS 1 a message the server sends.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from samuel_live.errors import SamuelError, SchemaError

ACCESS_OUT = 1
ACCESS_IN = 2
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  # an OSC "i" is a 32-bit signed integer
OscArg = int | float | str


@dataclass(frozen=True)
class ArgSpec:
    """One argument of an address: its name, OSC type tag and allowed range or values."""

    name: str
    tag: str
    minimum: float | None = None
    maximum: float | None = None
    values: tuple[OscArg, ...] | None = None
    extended_type: str | None = None

    def coerce(self, value: Any) -> OscArg:
        """Return ``value`` converted to this argument's type, or raise SchemaError."""
        converted = self._convert(value)
        self._check_range(converted)
        return converted

    def _convert(self, value: Any) -> OscArg:
        if self.tag == "s":
            if not isinstance(value, str):
                raise SchemaError(f"{self.name}: expected a string, got {_show(value)}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SchemaError(f"{self.name}: expected a number, got {_show(value)}")
        if not math.isfinite(value):
            raise SchemaError(f"{self.name}: expected a finite number, got {value}")
        if self.tag == "i":
            if float(value) != int(value):
                raise SchemaError(f"{self.name}: expected a whole number, got {value}")
            if not INT32_MIN <= value <= INT32_MAX:
                raise SchemaError(f"{self.name}: {value} does not fit a 32-bit integer "
                                  f"({INT32_MIN}..{INT32_MAX})")
            return int(value)
        return float(value)

    def _check_range(self, value: OscArg) -> None:
        if self.values is not None and value not in self.values:
            allowed = ", ".join(str(v) for v in self.values)
            raise SchemaError(f"{self.name}: {value!r} is not one of {allowed}")
        if isinstance(value, str):
            return
        if self.minimum is not None and value < self.minimum:
            raise SchemaError(f"{self.name}: {value} is below the minimum {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise SchemaError(f"{self.name}: {value} is above the maximum {self.maximum}")


@dataclass(frozen=True)
class Method:
    """One address that carries a message (a node with a TYPE)."""

    address: str
    args: tuple[ArgSpec, ...]
    min_args: int
    access: int
    reply: str | None
    description: str

    @property
    def type_tags(self) -> str:
        return "".join(a.tag for a in self.args)

    def validate(self, args: Sequence[Any]) -> tuple[OscArg, ...]:
        """Coerce ``args`` to this method's types, or raise SchemaError naming the problem."""
        names = " ".join(f"{a.name}:{a.tag}" for a in self.args) or "no arguments"
        if len(args) < self.min_args:
            missing = ", ".join(a.name for a in self.args[len(args) : self.min_args])
            raise SchemaError(f"{self.address}: missing argument(s) {missing}; expects {names}")
        if len(args) > len(self.args):
            raise SchemaError(
                f"{self.address}: {len(args) - len(self.args)} extra argument(s); expects {names}"
            )
        try:
            return tuple(spec.coerce(v) for spec, v in zip(self.args, args, strict=False))
        except SchemaError as exc:
            raise SchemaError(f"{self.address}: {exc}") from None


class Namespace:
    """The parsed namespace: the raw OSCQuery tree plus a table of methods by address."""

    def __init__(self, tree: dict[str, Any]) -> None:
        self.tree = tree
        self.methods: dict[str, Method] = {m.address: m for m in _walk(tree)}

    def method(self, address: str) -> Method:
        """The method at ``address``, or SchemaError if there is none."""
        found = self.methods.get(address)
        if found is None:
            raise SchemaError(f"unknown address {address}; send /samuel/status or see "
                              "`samuel-live schema` for the address list")
        return found

    def validate(self, address: str, args: Sequence[Any]) -> tuple[OscArg, ...]:
        """Validate an incoming command (ACCESS 2) and return its coerced arguments."""
        method = self.method(address)
        if method.access != ACCESS_IN:
            raise SchemaError(f"{address} is sent by the server, not a command")
        return method.validate(args)

    def commands(self) -> list[Method]:
        return [m for m in self.methods.values() if m.access == ACCESS_IN]

    def node(self, path: str) -> dict[str, Any] | None:
        """The OSCQuery node at ``path`` ("/" is the root), or None."""
        node = self.tree
        for part in [p for p in path.split("/") if p]:
            node = node.get("CONTENTS", {}).get(part)
            if node is None:
                return None
        return node

    def markdown_table(self) -> str:
        """A Markdown table of every address, for the docs."""
        rows = [
            "| Address | Direction | Arguments | Reply | Description |",
            "|---|---|---|---|---|",
        ]
        for m in self.methods.values():
            direction = "client → server" if m.access == ACCESS_IN else "server → client"
            rows.append(
                f"| `{m.address}` | {direction} | {_arg_cell(m)} | "
                f"{f'`{m.reply}`' if m.reply else ''} | {m.description.replace('|', '/')} |"
            )
        return "\n".join(rows) + "\n"


def _arg_cell(method: Method) -> str:
    parts = []
    for i, a in enumerate(method.args):
        text = f"{a.name}:{a.tag}"
        if a.values is not None:
            text += " (" + "/".join(str(v) for v in a.values) + ")"
        elif a.minimum is not None or a.maximum is not None:
            text += f" [{_num(a.minimum)}..{_num(a.maximum)}]"
        parts.append(f"[{text}]" if i >= method.min_args else text)
    return "`" + " ".join(parts) + "`" if parts else "—"


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def _show(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:60]


def _walk(node: dict[str, Any]) -> Iterator[Method]:
    if "TYPE" in node:
        yield _method(node)
    for child in node.get("CONTENTS", {}).values():
        yield from _walk(child)


def _method(node: dict[str, Any]) -> Method:
    tags = node["TYPE"]
    names = node.get("ARGS") or [f"arg{i}" for i in range(len(tags))]
    ranges = node.get("RANGE") or [None] * len(tags)
    extended = node.get("EXTENDED_TYPE") or [None] * len(tags)
    if not len(names) == len(ranges) == len(extended) == len(tags):
        raise SchemaError(f"namespace: {node['FULL_PATH']} has ARGS/RANGE/TYPE of unequal length")
    args = tuple(
        ArgSpec(
            name=name,
            tag=tag,
            minimum=(rng or {}).get("MIN"),
            maximum=(rng or {}).get("MAX"),
            values=tuple(rng["VALS"]) if rng and "VALS" in rng else None,
            extended_type=ext,
        )
        for name, tag, rng, ext in zip(names, tags, ranges, extended, strict=True)
    )
    return Method(
        address=node["FULL_PATH"],
        args=args,
        min_args=int(node.get("MIN_ARGS", len(tags))),
        access=int(node.get("ACCESS", ACCESS_IN)),
        reply=node.get("REPLY"),
        description=node.get("DESCRIPTION", ""),
    )


def schema_path() -> Path:
    """Where namespace.json is: the installed package's copy first, then the repository's."""
    package_dir = Path(__file__).resolve().parent.parent
    candidates = [
        package_dir / "schema" / "namespace.json",
        package_dir.parent / "osc_schema" / "namespace.json",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise SamuelError(
        "OSC namespace.json not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); reinstall samuel-live"
    )


def load_namespace(path: str | Path | None = None) -> Namespace:
    """Parse the namespace file (the packaged one by default); cached per path."""
    return _load(str(Path(path) if path else schema_path()))


@lru_cache(maxsize=4)
def _load(path: str) -> Namespace:
    try:
        tree = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SamuelError(f"cannot read OSC namespace {path}: {exc}") from exc
    return Namespace(tree)
