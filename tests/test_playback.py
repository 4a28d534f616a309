"""Playback through a real JACK dummy server: a JACK client records what the Player plays."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from samuel_live import SAMPLE_RATE
from samuel_live.audio.playback import PlaybackConfig, Player, next_boundary_frame

JACK_OUT = PlaybackConfig(device="system", hostapi="JACK")


class Recorder:
    """A JACK client recording its two input ports into a preallocated array."""

    def __init__(self, seconds: float = 4.0) -> None:
        import jack

        self.client = jack.Client("samuel-recorder", no_start_server=True)
        self.ports = [self.client.inports.register(f"in_{i}") for i in range(2)]
        self.data = np.zeros((2, int(seconds * SAMPLE_RATE)), dtype=np.float32)
        self.n = 0
        self.recording = False
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        if self.recording and self.n + frames <= self.data.shape[1]:
            for i, port in enumerate(self.ports):
                self.data[i, self.n : self.n + frames] = port.get_array()
            self.n += frames

    def listen_to(self, before: set[str]) -> None:
        """Connect the PortAudio output ports that appeared since ``before`` to our inputs."""
        for _ in range(50):
            new = sorted(
                p.name for p in self.client.get_ports("PortAudio", is_output=True)
                if p.name not in before
            )
            if len(new) >= 2:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("no PortAudio output ports appeared in JACK")
        for src, dst in zip(new, self.ports, strict=False):
            for _ in range(50):
                try:
                    self.client.connect(src, dst)
                    break
                except Exception:  # the port can be listed before it accepts connections
                    time.sleep(0.1)

    def recorded(self) -> np.ndarray:
        return self.data[:, : self.n]

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


@pytest.fixture
def player_and_recorder(jack_server: str) -> Iterator[tuple[Player, Recorder]]:
    rec = Recorder()
    before = {p.name for p in rec.client.get_ports("PortAudio")}
    player = Player(JACK_OUT).start()
    rec.listen_to(before)
    rec.recording = True
    yield player, rec
    player.close()
    rec.close()


def signal(n: int, seed: int) -> np.ndarray:
    """A (2, n) float32 pseudo-random signal with no zeros, so its start is easy to find."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.1, 0.9, (2, n)) * rng.choice([-1.0, 1.0], (2, n))
    return x.astype(np.float32)


def first_sound(x: np.ndarray) -> int:
    return int(np.flatnonzero(x[0])[0])


@pytest.mark.jack
def test_played_samples_arrive_sample_exact(player_and_recorder) -> None:
    player, rec = player_and_recorder
    audio = signal(SAMPLE_RATE // 2, seed=1)
    player.play(audio)
    time.sleep(1.0)
    out = rec.recorded()
    s = first_sound(out)
    np.testing.assert_array_equal(out[:, s : s + audio.shape[1]], audio)
    np.testing.assert_array_equal(out[:, s + audio.shape[1] :], 0.0)  # then silence
    # an underflow would show as a gap in the exact comparison above; under a loaded CI host
    # the non-realtime dummy driver may still flag one at stream start, so count, not assert
    assert player.stats().frames >= audio.shape[1]
    assert not player.position().playing


@pytest.mark.jack
def test_loop_is_seamless_and_stop_silences(player_and_recorder) -> None:
    player, rec = player_and_recorder
    audio = signal(3000, seed=2)  # not a multiple of the block size: wraps mid-block
    player.play(audio, loop=True)
    time.sleep(0.6)
    assert player.position().playing and player.position().loops > 5
    player.stop()
    time.sleep(0.3)
    out = rec.recorded()
    s = first_sound(out)
    sound = out[:, s:]
    end = int(np.flatnonzero(sound[0])[-1]) + 1
    played = sound[:, :end]
    reps = -(-played.shape[1] // audio.shape[1])
    np.testing.assert_array_equal(played, np.tile(audio, reps)[:, : played.shape[1]])
    assert played.shape[1] > 5 * audio.shape[1]
    np.testing.assert_array_equal(sound[:, end:], 0.0)


@pytest.mark.jack
def test_scheduled_start_switches_on_the_exact_frame(player_and_recorder) -> None:
    player, rec = player_and_recorder
    a, b = signal(1000, seed=3), signal(SAMPLE_RATE // 4, seed=4)
    now = player.position().stream_frame
    start_a = player.play(a, at_frame=now + 4096, loop=True)
    start_b = start_a + 10_007
    while not player.position().playing:  # a pending start is replaced by a later play()
        time.sleep(0.01)
    assert player.play(b, at_frame=start_b) == start_b
    time.sleep(0.8)
    out = rec.recorded()
    s = first_sound(out)
    n_a = start_b - start_a
    np.testing.assert_array_equal(out[:, s : s + n_a], np.tile(a, 11)[:, :n_a])
    np.testing.assert_array_equal(out[:, s + n_a : s + n_a + b.shape[1]], b)


def test_next_boundary_frame() -> None:
    bar = 4 * 60 * SAMPLE_RATE // 120  # 120 bpm, 4/4: 88200 frames
    assert next_boundary_frame(0, 120, 4) == 0
    assert next_boundary_frame(1, 120, 4) == bar
    assert next_boundary_frame(bar, 120, 4) == bar
    assert next_boundary_frame(bar + 1, 120, 4, bar_origin_frame=100) == bar + 100
    assert next_boundary_frame(bar + 101, 120, 4, bar_origin_frame=100) == 2 * bar + 100
    assert next_boundary_frame(5, 120, 4, bar_origin_frame=1000) == 1000
    assert next_boundary_frame(5, 120, 4, bar_origin_frame=1000 + bar) == 1000
    # a bar of 3 beats at 97 bpm is 81,835.05 frames; bar 1000 lands on the rounded grid
    f = next_boundary_frame(1000 * 81835, 97, 3)
    assert f == round(1000 * 3 * 60 * SAMPLE_RATE / 97)
    with pytest.raises(ValueError):
        next_boundary_frame(0, 0, 4)
