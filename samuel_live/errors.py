"""One error type per boundary: everything user-facing raises a SamuelError subclass."""


class SamuelError(Exception):
    """Base for errors whose message is meant for the user (CLI, OSC reply, log)."""


class AudioInputError(SamuelError):
    """Audio could not be read or has an unusable format."""


class ModelError(SamuelError):
    """A model or checkpoint is missing, corrupt, or does not match the codec."""


class CodecError(SamuelError):
    """A latent codec could not be loaded or used."""


class JobCancelled(SamuelError):
    """A generation job was cancelled by the user."""


class AudioDeviceError(SamuelError):
    """PortAudio is missing, or the requested audio device does not exist or cannot be opened."""


class OscPacketError(SamuelError):
    """A datagram or stream frame is not valid OSC."""


class SchemaError(SamuelError):
    """A message does not match the namespace."""


class RenderError(SamuelError):
    """A chorale could not be written as MIDI or rendered to audio."""


class ShardError(SamuelError):
    """Shards or their manifest are missing, inconsistent or unreadable."""


class PluginError(SamuelError):
    """A VST3 effect is not an installed plugin in an allowed folder, or could not be loaded."""


class BindError(SamuelError):
    """A server socket could not be bound; ``kind`` (udp/tcp/http) and ``port`` say which."""

    def __init__(self, kind: str, host: str, port: int, reason: str) -> None:
        super().__init__(f"cannot listen on {kind} {host}:{port}: {reason}")
        self.kind, self.host, self.port, self.reason = kind, host, port, reason


class ClusterError(SamuelError):
    """Ray or torch.distributed is missing, unreachable, or a process of the run was lost."""


class DiskFullError(SamuelError):
    """A write ran out of room: disk full, quota exceeded, or file too large for the file system."""


class InvalidArgumentError(SamuelError, ValueError):
    """An argument or setting is out of range (also a ValueError, for callers catching that)."""
