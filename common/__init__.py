"""Everything the API and the workers share. Imports neither `api` nor `worker`."""
