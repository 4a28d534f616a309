"""The namespace file: structure, validation rules and derived docs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from samuel_live.errors import SamuelError
from samuel_live.osc.admission import Limits
from samuel_live.osc.commands import parse_cli_args, schema_text
from samuel_live.osc.handlers import Handlers, handler_name
from samuel_live.osc.schema import (
    ACCESS_IN,
    ACCESS_OUT,
    INT32_MAX,
    INT32_MIN,
    Namespace,
    SchemaError,
    load_namespace,
    schema_path,
)

REQUIRED = [
    "/samuel/ping", "/samuel/status", "/samuel/client/register", "/samuel/client/unregister",
    "/samuel/capture/arm", "/samuel/capture/stop", "/samuel/capture/clear",
    "/samuel/capture/level", "/samuel/capture/mark", "/samuel/generate", "/samuel/cancel",
    "/samuel/post/get", "/samuel/post/set", "/samuel/model/load", "/samuel/model/info",
    "/samuel/transport/tempo", "/samuel/transport/signature", "/samuel/transport/bar",
    "/samuel/play", "/samuel/stop",
]
SERVER_MESSAGES = ["/samuel/progress", "/samuel/done", "/samuel/error", "/samuel/generate/ack",
                   "/samuel/status/reply"]


@pytest.fixture(scope="module")
def ns() -> Namespace:
    return load_namespace()


def test_schema_file_is_found_and_is_the_repo_copy() -> None:
    path = schema_path()
    assert path.name == "namespace.json" and path.is_file()
    assert json.loads(path.read_text())["CONTENTS"]["samuel"]["FULL_PATH"] == "/samuel"


def test_required_addresses_exist(ns: Namespace) -> None:
    for address in REQUIRED:
        assert ns.methods[address].access == ACCESS_IN, address
    for address in SERVER_MESSAGES:
        assert ns.methods[address].access == ACCESS_OUT, address


def test_every_node_is_consistent(ns: Namespace) -> None:
    def walk(node: dict, path: str) -> None:
        assert node["FULL_PATH"] == (path or "/")
        if "TYPE" in node:
            n = len(node["TYPE"])
            assert set(node["TYPE"]) <= set("ifs")
            assert len(node["ARGS"]) == len(node["RANGE"]) == n
            assert 0 <= node["MIN_ARGS"] <= n
            assert node["DESCRIPTION"]
        if "REPLY" in node:
            assert ns.methods[node["REPLY"]].access == ACCESS_OUT
        for name, child in node.get("CONTENTS", {}).items():
            walk(child, f"{path}/{name}")

    walk(ns.tree, "")


def test_every_command_has_a_server_handler(ns: Namespace) -> None:
    handlers = {m.address for m in ns.commands()}
    missing = [a for a in handlers if not hasattr(Handlers, handler_name(a))]
    assert missing == []


def test_numbers_accept_int_or_float(ns: Namespace) -> None:
    args = ns.validate("/samuel/generate", ["capture", "-", 3.0, 4.0, 2, "ddim"])
    assert args == ("capture", "-", 3, 4, 2.0, "ddim")
    assert type(args[2]) is int and type(args[4]) is float


def test_fractional_int_is_rejected(ns: Namespace) -> None:
    with pytest.raises(SchemaError, match="seed: expected a whole number, got 3.5"):
        ns.validate("/samuel/generate", ["capture", "-", 3.5])


@pytest.mark.parametrize(("address", "args", "problem"), [
    ("/samuel/generate", ["capture", "-", 1, 801], "above the maximum 800"),
    ("/samuel/generate", ["capture", "-", -2], "below the minimum -1"),
    ("/samuel/generate", ["capture", "-", 1, 4, 2.0, "euler"], "not one of"),
    ("/samuel/capture/mark", ["middle"], "not one of"),
    ("/samuel/cancel", [], "missing argument(s) job"),
    ("/samuel/ping", [1, 2], "1 extra argument"),
    ("/samuel/cancel", ["3"], "expected a number"),
    ("/samuel/post/set", [1.0], "expected a string"),
    ("/samuel/transport/tempo", [float("nan")], "finite"),
    ("/samuel/nope", [], "unknown address /samuel/nope"),
    ("/samuel/done", [1, "x"], "sent by the server"),
])
def test_invalid_messages_name_the_problem(ns: Namespace, address: str, args: list,
                                           problem: str) -> None:
    with pytest.raises(SchemaError) as info:
        ns.validate(address, args)
    assert problem in str(info.value)


def test_optional_trailing_args(ns: Namespace) -> None:
    assert ns.validate("/samuel/generate", ["capture"]) == ("capture",)
    assert ns.validate("/samuel/ping", []) == ()


def test_markdown_table_lists_every_address(ns: Namespace) -> None:
    table = schema_text("markdown")
    for address in ns.methods:
        assert f"`{address}`" in table
    assert "`source:s [output:s] [seed:i [-1..2147483647]]" in table


def test_schema_json_round_trips(ns: Namespace) -> None:
    assert Namespace(json.loads(schema_text("json"))).methods == ns.methods
    with pytest.raises(SamuelError, match="json or markdown"):
        schema_text("yaml")


def test_cli_args_are_typed_by_the_schema(ns: Namespace) -> None:
    method = ns.methods["/samuel/generate"]
    assert parse_cli_args(["capture", "out", "3", "4", "2"], method) == [
        "capture", "out", 3, 4, 2.0]
    with pytest.raises(SchemaError, match="seed"):
        parse_cli_args(["capture", "out", "x"], method)
    assert parse_cli_args(["1", "2.5", "a"], None) == [1, 2.5, "a"]


def test_installed_layout_is_preferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import samuel_live.osc.schema as schema_module

    pkg = tmp_path / "samuel_live"
    (pkg / "osc").mkdir(parents=True)
    (pkg / "schema").mkdir()
    (pkg / "schema" / "namespace.json").write_text(schema_path().read_text())
    monkeypatch.setattr(schema_module, "__file__", str(pkg / "osc" / "schema.py"))
    assert schema_module.schema_path() == pkg / "schema" / "namespace.json"


def test_every_integer_argument_of_a_command_has_an_int32_range(ns: Namespace) -> None:
    for method in ns.commands():
        for arg in method.args:
            if arg.tag == "i":
                assert arg.values is not None or (
                    arg.minimum is not None and arg.maximum is not None), (method.address, arg)
                low = min(arg.values) if arg.values else arg.minimum
                high = max(arg.values) if arg.values else arg.maximum
                assert INT32_MIN <= low and high <= INT32_MAX, (method.address, arg.name)
    with pytest.raises(SchemaError, match="32-bit"):  # and the check holds without a RANGE
        ns.methods["/samuel/pong"].validate([2**31])


def test_the_register_description_states_the_server_limits(ns: Namespace) -> None:
    limits, text = Limits(), ns.methods["/samuel/client/register"].description
    assert f"At most {limits.max_clients_per_host} clients per host" in text
    assert f"{limits.max_clients} in all" in text and f"{limits.client_ttl_s:g} s" in text
