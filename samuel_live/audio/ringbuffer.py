"""A preallocated rolling audio buffer: one writer (the audio callback), any number of readers.

Thread safety is a seqlock without a lock. The writer announces the range it is about to
overwrite (``_claimed``), copies, then publishes it (``_written``). A reader copies a range and
afterwards checks that the writer's claim has not reached into it; if it has, the copy may be
torn and the reader retries (rolling reads) or raises (absolute regions). The writer never waits
for a reader, so the audio callback cannot be blocked by the engine thread. CPython stores
integer attributes atomically and in program order, which is all the scheme needs; numpy may
release the GIL during the copies, which is exactly the race the claim check catches.
"""

from __future__ import annotations

import numpy as np

from samuel_live import WINDOW_SAMPLES
from samuel_live.errors import AudioInputError, InvalidArgumentError

_MAX_READ_TRIES = 8


class RingBuffer:
    """A float32 (channels, capacity) ring addressed by absolute frame numbers.

    Frame ``f`` (counted since creation, never reset) lives at column ``f % capacity`` until
    ``capacity`` more frames have been written after it.
    """

    def __init__(self, capacity: int = WINDOW_SAMPLES, channels: int = 2) -> None:
        if capacity <= 0 or channels <= 0:
            raise InvalidArgumentError(
                f"capacity and channels must be positive, got {capacity}, {channels}")
        self.capacity = int(capacity)
        self.channels = int(channels)
        self._data = np.zeros((self.channels, self.capacity), dtype=np.float32)
        self._claimed = 0  # writer: frames [.., _claimed) may be in the ring or being written
        self._written = 0  # writer: frames [.., _written) are complete
        self._floor = 0  # reader side: frames before this were cleared

    @property
    def written(self) -> int:
        """Total frames written since creation (absolute position of the next frame)."""
        return self._written

    @property
    def floor(self) -> int:
        """First frame that ``clear()`` left readable."""
        return self._floor

    def available(self) -> tuple[int, int]:
        """The absolute range ``[start, end)`` that can be read right now."""
        end = self._written
        return max(self._floor, end - self.capacity), end

    def write(self, block: np.ndarray) -> None:
        """Append a (frames, channels) or (frames, 1) block; mono is copied to every channel.

        Allocates no array memory, so it may be called from an audio callback. Blocks longer
        than the capacity keep only their last ``capacity`` frames (the rest counts as written).
        """
        frames = block.shape[0]
        start = self._written
        if frames > self.capacity:
            block = block[frames - self.capacity :]
            start += frames - self.capacity
        n = block.shape[0]
        self._claimed = start + n
        col = start % self.capacity
        first = min(n, self.capacity - col)
        np.copyto(self._data[:, col : col + first], block[:first].T)
        if first < n:
            np.copyto(self._data[:, : n - first], block[first:].T)
        self._written = start + n

    def clear(self) -> None:
        """Forget everything written so far (readers see nothing before this point)."""
        self._floor = self._written

    def snapshot(
        self,
        last_frames: int | None = None,
        start_frame: int | None = None,
        end_frame: int | None = None,
    ) -> np.ndarray:
        """Copy audio out as a new float32 (channels, n) array.

        - ``last_frames=n``: exactly the newest ``n`` frames, zero-padded at the start where
          nothing was captured (before the first write or the last ``clear()``).
        - ``start_frame``/``end_frame``: the absolute region ``[start, end)``; ``end`` defaults
          to now. Raises AudioInputError if any of it was overwritten, cleared, or not yet written.
        - neither: everything still readable.
        """
        if last_frames is not None:
            if start_frame is not None or end_frame is not None:
                raise InvalidArgumentError(
                    "pass either last_frames or start_frame/end_frame, not both")
            return self._snapshot_last(int(last_frames))
        if start_frame is None and end_frame is None:
            for _ in range(_MAX_READ_TRIES):
                lo, hi = self.available()
                out = self._copy(lo, hi)
                if self._intact(lo):
                    return out
            raise AudioInputError(_CONTENDED)
        end = self._written if end_frame is None else int(end_frame)
        start = self.available()[0] if start_frame is None else int(start_frame)
        self._check_region(start, end)
        out = self._copy(start, end)
        if not self._intact(start):
            raise AudioInputError(_overwritten(start, self._claimed, self.capacity))
        return out

    def _snapshot_last(self, n: int) -> np.ndarray:
        if n < 0:
            raise InvalidArgumentError(f"last_frames must be >= 0, got {n}")
        out = np.zeros((self.channels, n), dtype=np.float32)
        for _ in range(_MAX_READ_TRIES):
            end = self._written
            start = max(end - n, self._floor, end - self.capacity)
            self._copy(start, end, out[:, n - (end - start) :])
            if self._intact(start):
                return out
        raise AudioInputError(_CONTENDED)

    def _check_region(self, start: int, end: int) -> None:
        if end < start:
            raise InvalidArgumentError(f"region end {end} is before its start {start}")
        if end > self._written:
            raise AudioInputError(
                f"region [{start}, {end}) reaches past the newest captured frame "
                f"{self._written}; wait for the audio to arrive or end the region earlier"
            )
        if start < self._floor:
            raise AudioInputError(
                f"region starts at frame {start}, before the buffer was cleared at frame "
                f"{self._floor}; mark the region again after clearing"
            )
        if start < self._claimed - self.capacity:
            raise AudioInputError(_overwritten(start, self._claimed, self.capacity))

    def _intact(self, start: int) -> bool:
        return start >= self._claimed - self.capacity

    def _copy(self, start: int, end: int, out: np.ndarray | None = None) -> np.ndarray:
        n = end - start
        if out is None:
            out = np.empty((self.channels, n), dtype=np.float32)
        col = start % self.capacity
        first = min(n, self.capacity - col)
        out[:, :first] = self._data[:, col : col + first]
        if first < n:
            out[:, first:n] = self._data[:, : n - first]
        return out


_CONTENDED = "ring buffer kept changing during the copy; the reader is too slow for this buffer"


def _overwritten(start: int, claimed: int, capacity: int) -> str:
    oldest = claimed - capacity
    return (
        f"region starting at frame {start} was overwritten (oldest kept frame is {oldest}, "
        f"buffer holds {capacity} frames); take the snapshot sooner or capture with more seconds"
    )
