"""The live engine: one worker thread runs generations queued by the network and the CLI."""

from samuel_live.engine.engine import Engine, EngineStatus
from samuel_live.engine.events import EngineEvent
from samuel_live.engine.jobs import GenerateRequest, Job, JobResult, JobStatus, Source
from samuel_live.engine.transport import PlayStart, Transport
from samuel_live.render.take import LoopSpec

__all__ = [
    "Engine", "EngineEvent", "EngineStatus", "GenerateRequest", "Job", "JobResult", "JobStatus",
    "LoopSpec", "PlayStart", "Source", "Transport",
]
