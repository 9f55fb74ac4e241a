"""The `streamfleet` command."""
