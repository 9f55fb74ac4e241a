"""5centsCDN compatible surface: pull streams (`/v2/streams/restream`) and their platforms.

`X-API-Key` carries a key (of a project, or farm-wide). Bodies come as JSON or form-encoded,
with keys flat in bracket form (`server[mediaserver]`, `url[mediaserver][]`,
`platform[name]`) or nested; `_METHOD` overrides the verb as the vendor's clients send it.
Answers are `{result, message, stream}`; authentication failures and the rate limit answer
`{status: "error", errors: [{code, message}]}`. Stream and platform ids are integers. An adapter
only: the rules live in `common.vendors.fivecents`.

`requests` parses what a client sends, `render` what it is answered, `routes` joins them.
"""

from api.surfaces.fivecents.render import render_error
from api.surfaces.fivecents.routes import router

__all__ = ["render_error", "router"]
