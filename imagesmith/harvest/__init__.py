"""``imagesmith matrix harvest``: facts read from the published artifacts themselves (wheel metadata,
nvcc's own target lists, the fatbins of CUDA libraries), compared with the transcribed data."""
