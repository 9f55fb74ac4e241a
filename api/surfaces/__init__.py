"""API surfaces: thin adapters, each with its own shapes, auth and error envelope."""

import re

# The integer ids of the vendor surfaces (ASCII digits only: "²" is a digit to str.isdigit).
INTEGER_ID = re.compile(r"[0-9]{1,18}")
