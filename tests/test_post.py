"""The post chain: real pedalboard plugins and pyloudnorm, on synthetic signals."""

from __future__ import annotations

import json
import threading

import numpy as np
import pedalboard
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from samuel_live import SAMPLE_RATE
from samuel_live.config import PostSection
from samuel_live.errors import SamuelError
from samuel_live.post import (
    CEILING_DBTP,
    MAX_CHAIN_JSON_BYTES,
    MAX_EFFECTS,
    PRESETS,
    PostChain,
    build_chain,
    chain_from_json,
    check_post,
    validate_effect,
)

SR = SAMPLE_RATE


def tone(freq: float, dbfs: float, seconds: float = 2.0) -> np.ndarray:
    """A stereo sine with peak ``dbfs``."""
    t = np.arange(int(seconds * SR)) / SR
    x = (10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x, x])


def noise(seconds: float, seed: int, scale: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal((2, int(seconds * SR)))).astype(np.float32)


def lufs(x: np.ndarray) -> float:
    return float(pyloudnorm.Meter(SR).integrated_loudness(x.T.astype(np.float64)))


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2))))


def test_quiet_sine_is_normalised_to_target() -> None:
    out = build_chain(PostSection(loudness_lufs=-16.0)).process(tone(1000, -30.0))
    assert abs(lufs(out) - -16.0) < 0.5
    assert out.dtype == np.float32 and out.shape == (2, 2 * SR)


def test_loud_input_stays_under_true_peak_ceiling_and_near_target() -> None:
    out = PostChain((), loudness_lufs=-8.0).process(noise(4.0, seed=1))
    assert float(np.abs(out).max()) <= 10 ** (CEILING_DBTP / 20)
    oversampled = resample_poly(out.astype(np.float64), 4, 1, axis=1)
    assert 20 * np.log10(np.abs(oversampled).max()) <= CEILING_DBTP + 0.05
    assert abs(lufs(out) - -8.0) < 0.5


def test_highpass_attenuates_low_tone_and_passes_high_tone() -> None:
    chain = PostChain([{"type": "highpass", "cutoff_hz": 200.0}], loudness_lufs=None)
    low, high = tone(50, -12.0), tone(1000, -12.0)
    half = SR  # skip the filter's start-up
    assert rms_db(low[:, half:]) - rms_db(chain.process(low)[:, half:]) > 12.0
    assert abs(rms_db(high[:, half:]) - rms_db(chain.process(high)[:, half:])) < 1.0


@pytest.mark.parametrize("n", [1, 1000, 12_345, 3 * SR + 7])
def test_length_is_preserved_with_reverb(n: int) -> None:
    chain = build_chain(PostSection(preset="warm"))
    x = noise(n / SR + 1, seed=2)[:, :n]
    out = chain.process(x)
    assert out.shape == (2, n) and np.isfinite(out).all()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_silence_in_silence_out(preset: str) -> None:
    out = build_chain(PostSection(preset=preset)).process(np.zeros((2, SR), np.float32))
    assert out.shape == (2, SR)
    assert np.isfinite(out).all() and float(np.abs(out).max()) == 0.0


def test_empty_input_gives_empty_output() -> None:
    out = build_chain(PostSection()).process(np.zeros((2, 0), np.float32))
    assert out.shape == (2, 0)


@pytest.mark.parametrize(
    ("effect", "words"),
    [
        ({"type": "fuzz"}, ["fuzz", "compressor", "vst3"]),
        ({"gain_db": 3.0}, ["None", "highpass"]),
        ({"type": "compressor", "thresh": -3}, ["thresh", "threshold_db", "ratio"]),
        ({"type": "highpass"}, ["cutoff_hz"]),
        ({"type": "highpass", "cutoff_hz": 5.0}, ["cutoff_hz", "10"]),
        ({"type": "reverb", "wet_level": 1.5}, ["wet_level", "0..1"]),
        ({"type": "compressor", "ratio": float("nan")}, ["ratio"]),
        ({"type": "gain", "gain_db": True}, ["gain_db", "number"]),
        ({"type": "gain", "gain_db": "3"}, ["gain_db", "number"]),
        ({"type": "vst3"}, ["path"]),
        ({"type": "vst3", "path": "x.vst3", "params": {"a": [1]}}, ["a"]),
        ("highpass", ["table"]),
    ],
)
def test_bad_effects_raise_naming_the_fix(effect: object, words: list[str]) -> None:
    with pytest.raises(SamuelError) as err:
        PostChain([effect], loudness_lufs=None)  # type: ignore[list-item]
    for word in words:
        assert word in str(err.value)


def test_bad_preset_and_settings_raise() -> None:
    with pytest.raises(SamuelError, match="custom"):
        build_chain(PostSection(preset="shiny"))
    with pytest.raises(SamuelError, match="loudness_lufs"):
        PostChain((), loudness_lufs=5.0)
    with pytest.raises(SamuelError, match="dry_vocal_db"):
        PostChain((), dry_vocal_db=float("inf"))


def test_custom_preset_uses_config_chain() -> None:
    post = PostSection(preset="custom", chain=({"type": "gain", "gain_db": -6},))
    assert build_chain(post).describe() == [{"type": "gain", "gain_db": -6.0}]
    assert build_chain(PostSection(preset="clean")).describe() == []


def test_describe_round_trips_through_json() -> None:
    every = [
        {"type": "gain", "gain_db": -3},
        {"type": "highpass", "cutoff_hz": 30},
        {"type": "lowpass", "cutoff_hz": 16000},
        {"type": "eq", "cutoff_hz": 1000, "gain_db": 2, "q": 1.5},
        {"type": "peak", "cutoff_hz": 3000, "gain_db": -2},
        {"type": "lowshelf", "cutoff_hz": 200, "gain_db": 3},
        {"type": "highshelf", "cutoff_hz": 9000, "gain_db": -1},
        {"type": "compressor", "threshold_db": -20, "ratio": 3, "attack_ms": 2, "release_ms": 80},
        {"type": "reverb", "room_size": 0.2, "wet_level": 0.1},
        {"type": "limiter", "threshold_db": -2},
    ]
    for effects in [every, *PRESETS.values()]:
        described = PostChain(effects).describe()
        text = json.dumps(described)
        assert list(chain_from_json(text)) == described
        assert PostChain(chain_from_json(text)).describe() == described
    eq = {"type": "eq", "cutoff_hz": 1000.0, "gain_db": 2.0, "q": 1.5}
    assert validate_effect(every[3]) == eq


@pytest.mark.parametrize("text", ["not json", '{"type": "gain"}', "[1, 2]"])
def test_chain_from_json_rejects_bad_text(text: str) -> None:
    with pytest.raises(SamuelError):
        chain_from_json(text)


def test_chain_size_is_bounded() -> None:
    gain = {"type": "gain", "gain_db": -1.0}
    assert len(PostChain([gain] * MAX_EFFECTS, loudness_lufs=None).describe()) == MAX_EFFECTS
    with pytest.raises(SamuelError, match=f"at most {MAX_EFFECTS}"):
        chain_from_json(json.dumps([gain] * (MAX_EFFECTS + 1)))
    with pytest.raises(SamuelError, match=f"at most {MAX_EFFECTS}"):
        check_post(PostSection(preset="custom", chain=(gain,) * (MAX_EFFECTS + 1)))
    padded = json.dumps([gain]) + " " * MAX_CHAIN_JSON_BYTES
    with pytest.raises(SamuelError, match=f"at most {MAX_CHAIN_JSON_BYTES}"):
        chain_from_json(padded)
    # counted in bytes: 3-byte characters under the character count still exceed the limit
    wide = json.dumps([{"type": "vst3", "path": "\u20ac" * (MAX_CHAIN_JSON_BYTES // 2)}],
                      ensure_ascii=False)
    assert len(wide) < MAX_CHAIN_JSON_BYTES < len(wide.encode())
    with pytest.raises(SamuelError, match="bytes"):
        chain_from_json(wide)
    with pytest.raises(SamuelError, match="nested too deeply"):
        chain_from_json("[" * 30000 + "]" * 30000)
    params = {f"p{i}": 0.5 for i in range(300)}
    with pytest.raises(SamuelError, match="at most 256"):
        validate_effect({"type": "vst3", "path": "x.vst3", "params": params})
    with pytest.raises(SamuelError, match="at most 256 characters"):
        validate_effect({"type": "vst3", "path": "x.vst3", "params": {"p": "v" * 300}})


def test_check_post_checks_levels_without_building() -> None:
    assert check_post(PostSection(preset="clean")) == ()
    with pytest.raises(SamuelError, match="loudness_lufs"):
        check_post(PostSection(loudness_lufs=3.0))
    with pytest.raises(SamuelError, match="dry_vocal_db"):
        check_post(PostSection(dry_vocal_db=40.0))
    with pytest.raises(SamuelError, match="custom"):
        check_post(PostSection(preset="shiny"))


def test_cutoff_above_nyquist_raises() -> None:
    chain = PostChain([{"type": "lowpass", "cutoff_hz": 15000}], loudness_lufs=None)
    with pytest.raises(SamuelError, match="Nyquist"):
        chain.process(np.zeros((2, 100), np.float32), sample_rate=22050)


@pytest.mark.parametrize(
    "audio",
    [np.zeros((3, 10), np.float32), np.zeros((2, 10), np.int16), np.full((2, 10), np.nan)],
)
def test_bad_audio_raises(audio: np.ndarray) -> None:
    with pytest.raises(SamuelError):
        PostChain(()).process(audio)


def test_dry_vocal_is_mixed_only_when_enabled() -> None:
    audio, vocal = tone(440, -20.0, 1.0), tone(660, -20.0, 0.5)[:1]
    mixed = PostChain((), loudness_lufs=None, dry_vocal_db=-6.0).process(audio, vocal)
    expected = audio.copy()
    expected[:, : vocal.shape[1]] += 10 ** (-6 / 20) * vocal
    np.testing.assert_allclose(mixed, expected, atol=1e-6)
    plain = PostChain((), loudness_lufs=None).process(audio, vocal)
    np.testing.assert_array_equal(plain, audio)


def test_threads_sharing_one_chain_match_serial_results() -> None:
    chain = build_chain(PostSection(preset="warm"))
    inputs = [noise(0.5, seed=s, scale=0.05 * (s + 1)) for s in range(6)]
    serial = [chain.process(x) for x in inputs]
    results: list[np.ndarray | None] = [None] * len(inputs)
    start = threading.Barrier(len(inputs))

    def work(i: int) -> None:
        start.wait()
        for _ in range(3):
            results[i] = chain.process(inputs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, serial, strict=True):
        assert got is not None
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("bad", [
    [{"type": "x" * 5000}], ["y" * 5000], [{"type": "gain", "gain_db": "z" * 5000}],
    [{"type": "gain", **{f"k{i}": 1 for i in range(2000)}}], {"q" * 5000: 1},
])
def test_refusals_quote_hostile_input_briefly(bad: object) -> None:
    with pytest.raises(SamuelError) as err:
        chain_from_json(json.dumps(bad))
    assert len(str(err.value)) < 400


@pytest.mark.parametrize("rate", [44100, 48000, 11025])
def test_fast_loudness_equals_pyloudnorm(rate: int) -> None:
    """Breaks: a K-weighting stage dropped or reordered, a block bound off by a hop, a gate
    with the wrong sign or threshold, the tail past the last whole hop ignored.
    The signal swells from silence (the absolute gate acts) with a loud burst (the relative
    gate acts) and is not a whole number of hops long; 11025 Hz has a fractional hop."""
    from samuel_live.post.loudness import integrated_loudness

    rng = np.random.default_rng(rate)
    n = int(7.36 * rate) + 17
    ramp = np.linspace(0.0, 1.0, n) ** 4
    x = rng.standard_normal((2, n)) * ramp * np.array([[0.05], [0.02]])
    x[:, n // 3 : n // 3 + rate] *= 30.0
    x[1, -rate // 7 :] += 0.5  # a loud tail shorter than one hop: only the last blocks see it
    want = pyloudnorm.Meter(rate).integrated_loudness(x.T)
    assert integrated_loudness(x, rate) == pytest.approx(want, abs=1e-9)
    assert integrated_loudness(np.zeros((2, rate)), rate) == -np.inf


def test_true_peak_envelope_skips_only_what_cannot_reach_the_ceiling() -> None:
    """Breaks: a stretch's context too short (edge samples of a hot stretch wrong), the bound
    too tight (a real inter-sample peak over the ceiling missed), stretches not oversampled at
    all. Quiet noise with two loud bursts: the bursts' envelope must be exact, the rest may
    hold the sample peak but stay under the ceiling, and the limiter must act the same."""
    from samuel_live.post.chain import _limit, _true_peak_envelope

    rng = np.random.default_rng(11)
    x = 0.02 * rng.standard_normal((2, 5 * SR))
    for at in (SR, 3 * SR + 123):
        x[:, at : at + 700] = 0.99 * np.sign(np.sin(np.arange(700) * 2.9))  # inter-sample peaks
    ceiling = 10.0 ** ((CEILING_DBTP - 0.001) / 20.0)
    full, fast = _true_peak_envelope(x), _true_peak_envelope(x, ceiling)
    hot = full > ceiling
    assert hot.any() and (~hot).any() and not np.array_equal(full, fast)
    np.testing.assert_array_equal(fast[hot], full[hot])
    assert float(fast[~hot].max()) <= ceiling
    sample_peak = _true_peak_envelope(x, np.inf)  # nothing oversampled: phase 0 alone
    assert ((fast == full) | (fast == sample_peak)).all()  # each sample exact, or skipped
    limited, acted = _limit(x, SR)
    assert acted and float(_true_peak_envelope(limited).max()) <= ceiling + 1e-9


def test_true_peak_bound_reaches_across_block_edges() -> None:
    """The skip bound is taken per block of samples: a lone spike on either side of a block
    edge rings into the neighbouring block, and those samples must still be exact. Breaks: the
    bound ignoring the neighbouring blocks, or blocks shorter than the interpolator's reach."""
    from samuel_live.post.chain import _BLOCK, _REACH, _true_peak_envelope

    assert _BLOCK >= _REACH
    rng = np.random.default_rng(5)
    x = 0.01 * rng.standard_normal((1, 40 * _BLOCK))
    for k in (5, 17, 30):
        x[0, k * _BLOCK] = 1.0  # first sample of a block: rings into the block before
        x[0, (k + 6) * _BLOCK - 1] = -1.0  # last sample of a block: rings into the next one
    ceiling = 10.0 ** ((CEILING_DBTP - 0.001) / 20.0)
    full, fast = _true_peak_envelope(x), _true_peak_envelope(x, ceiling)
    hot = full > ceiling
    assert (np.abs(x[0]) <= ceiling)[hot].any()  # hot samples that are quiet themselves
    np.testing.assert_array_equal(fast[hot], full[hot])


def test_every_channel_wise_effect_keeps_dual_mono_dual_mono() -> None:
    """CHANNEL_WISE lets one channel stand for both: each listed type, at its defaults, must
    give a dual-mono input exactly the output the stereo board gives."""
    from samuel_live.post.chain import CHANNEL_WISE
    from samuel_live.post.spec import BUILTIN_EFFECTS

    rng = np.random.default_rng(4)
    y = (0.5 * rng.standard_normal(SR)).astype(np.float32)
    for kind in sorted(CHANNEL_WISE):
        board = pedalboard.Pedalboard([BUILTIN_EFFECTS[kind][0]()])
        both = board.process(np.stack([y, y]), SR, reset=True)
        one = board.process(y[None], SR, reset=True)
        assert np.array_equal(both[0], one[0]) and np.array_equal(both[1], one[0]), kind


class _CountingBoard:
    """The real board, noting how many channels each call sends through it."""

    def __init__(self, board: pedalboard.Pedalboard, seen: list[int]) -> None:
        self.board, self.seen = board, seen

    def __len__(self) -> int:
        return len(self.board)

    def process(self, audio: np.ndarray, *args: object, **kw: object) -> np.ndarray:
        self.seen.append(audio.shape[0])
        return self.board.process(audio, *args, **kw)


def test_dual_mono_takes_the_one_channel_path_with_the_same_result() -> None:
    """Breaks: the shortcut taken for a stereo input, or for a chain with a stereo effect."""
    rng = np.random.default_rng(5)
    y = (0.2 * rng.standard_normal(SR)).astype(np.float32)
    for preset in ("default", "live", "warm"):
        chain = build_chain(PostSection(preset=preset))
        seen: list[int] = []
        board = chain._board
        chain._board = _CountingBoard(board, seen)
        mono = chain.process(np.stack([y, y]))
        stereo = chain.process(np.stack([y, 0.5 * y]))
        chain._board = board
        assert seen == ([1, 2] if preset != "warm" else [2, 2]), preset
        reference = PostChain(chain.describe(), chain.loudness_lufs)
        reference._mono_ok = False  # the plain stereo path
        np.testing.assert_array_equal(mono, reference.process(np.stack([y, y])))
        np.testing.assert_array_equal(stereo, reference.process(np.stack([y, 0.5 * y])))
        if preset == "warm":  # the reverb widens: both channels differ on a dual-mono input
            assert not np.array_equal(mono[0], mono[1])


def test_dual_mono_shortcuts_in_the_meters_keep_every_number() -> None:
    """Breaks: the one-channel shortcut taken when the channels differ, or a dual-mono result
    metered as one channel (3 dB quieter)."""
    from samuel_live.post.chain import _true_peak_envelope
    from samuel_live.post.loudness import integrated_loudness

    y = noise(3.0, 11)[0].astype(np.float64)
    dual, louder = np.stack([y, y]), np.stack([y, 2.0 * y])
    meter = pyloudnorm.Meter(SR)
    assert integrated_loudness(dual, SR) == pytest.approx(meter.integrated_loudness(dual.T),
                                                          abs=1e-9)
    assert integrated_loudness(louder, SR) == pytest.approx(
        meter.integrated_loudness(louder.T), abs=1e-9)
    np.testing.assert_array_equal(_true_peak_envelope(dual), _true_peak_envelope(y[None]))
    np.testing.assert_array_equal(_true_peak_envelope(louder),
                                  _true_peak_envelope((2.0 * y)[None]))
