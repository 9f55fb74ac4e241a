"""Helpers shared by the tests: real services, media tools, a farm in processes."""
