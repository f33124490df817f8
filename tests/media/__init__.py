"""Tests of the pure media core: frames, G.711, codecs, resampling, WAV, mixer and tones."""
