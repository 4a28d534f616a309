"""The live engine: one worker thread runs generations queued by the network and the CLI."""

from samuel_live.engine.engine import Engine, EngineEvent, EngineStatus
from samuel_live.engine.jobs import GenerateRequest, Job, JobResult, JobStatus, LoopSpec, Source
from samuel_live.engine.transport import PlayStart, Transport

__all__ = [
    "Engine", "EngineEvent", "EngineStatus", "GenerateRequest", "Job", "JobResult", "JobStatus",
    "LoopSpec", "PlayStart", "Source", "Transport",
]
