"""Media server modules as stored (`common.models.Server`): queries only."""
