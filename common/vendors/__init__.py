"""Each vendor API's own rules over the core, as plain functions without HTTP: Gjirafa VP's
live videos and destinations (`gjirafa`), 5centsCDN's pull streams and platforms
(`fivecents`). The routes in `api/surfaces` parse and render; the rules live here."""
