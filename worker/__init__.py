"""The worker: one Celery worker per node, owning the FFmpeg processes placed on it."""
