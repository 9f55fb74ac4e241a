"""The farm's vocabulary, without I/O: what a restream is (its definition: input, transcoding,
outputs) and the states restreams and nodes go through. Everything else builds on these."""
