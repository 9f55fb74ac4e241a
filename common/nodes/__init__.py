"""Worker nodes: their capabilities, leases, state and the placement of restreams on them."""
