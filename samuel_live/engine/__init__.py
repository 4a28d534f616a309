"""The live engine: one worker thread runs generations queued by the network and the CLI."""

from samuel_live.engine.engine import Engine, EngineEvent, EngineStatus, PlayStart, Transport
from samuel_live.engine.jobs import GenerateRequest, Job, JobResult, JobStatus, Source

__all__ = [
    "Engine", "EngineEvent", "EngineStatus", "GenerateRequest", "Job", "JobResult", "JobStatus",
    "PlayStart", "Source", "Transport",
]
