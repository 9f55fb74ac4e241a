"""Restreams: one live input, an optional transcode, one or more live outputs."""
