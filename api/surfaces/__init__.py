"""API surfaces: thin adapters, each with its own shapes, auth and error envelope."""
