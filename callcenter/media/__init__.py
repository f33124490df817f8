"""PCM frames, G.711 codecs, codec registry, mixer, tones and resampling (no I/O)."""
