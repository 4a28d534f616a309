"""samuel-live: SAMUeL vocal-to-accompaniment latent diffusion for live music work."""

__version__ = "0.1.0"

SAMPLE_RATE = 44100
HOP = 2048
LATENT_FRAMES = 1024
LATENT_CHANNELS = 64
WINDOW_SAMPLES = HOP * LATENT_FRAMES  # 2_097_152 samples = 47.55 s at 44.1 kHz
