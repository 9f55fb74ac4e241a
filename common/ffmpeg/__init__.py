"""FFmpeg: the pure argv builder, progress parser and exit classifier, and the probe."""
