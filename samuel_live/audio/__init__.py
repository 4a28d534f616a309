"""Audio file input and output."""

from samuel_live.audio.io import (
    read_audio,
    resample,
    to_stereo,
    write_audio_atomic,
    write_json_atomic,
)

__all__ = ["read_audio", "resample", "to_stereo", "write_audio_atomic", "write_json_atomic"]
