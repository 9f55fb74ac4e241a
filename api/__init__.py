"""The stateless HTTP API: four surfaces over the same services in `common`."""
