"""FFmpeg: the pure argv builder, progress parser and exit classifier, which binary to run, and
the probe of what it can do. Knows restream definitions, nothing of storage."""
