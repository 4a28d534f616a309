"""The OSC bridge: the namespace (osc_schema/namespace.json), a UDP/TCP server in front of the
Engine, OSCQuery over HTTP, a client, and the CLI's serve/send/schema commands."""

from samuel_live.osc.schema import Namespace, SchemaError, load_namespace, schema_path

__all__ = ["Namespace", "SchemaError", "load_namespace", "schema_path"]
