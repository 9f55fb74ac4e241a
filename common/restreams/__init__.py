"""Restreams' rows: every SQL statement about them (`repository`). What a restream is lives in
`common.definitions`; every change of its state, in `common.lifecycle`."""
