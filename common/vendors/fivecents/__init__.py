"""Pull streams and their platforms (the 5centsCDN model), made of restreams.

A pull stream is a restream that pulls a source URL, encodes it to the codec asked for (or
copies it when the source already has that codec), packages it for playback (HLS and DASH
served by its node's worker; RTMP and RTSP through the node's own servers) and writes it to
the node's relay. Each platform — a destination such as a social network's RTMP ingest — is a
restream of its own fed by that relay, so switching one on or off touches nothing else.

What the surface says about a stream (its name, the servers it may run on) is kept in the
restream's attributes in the vendor's own words; draft, disabled and a soft delete are its
holds, in the core, which every surface respects. Never commits.

`model` (its words), `servers` (regions), `streams`, `platforms`.
"""

from common.vendors.fivecents.model import (
    CDN_ONLY,
    Codec,
    PlatformFields,
    PlatformNotFound,
    Protocol,
    Server,
    StreamFields,
    StreamNotFound,
    is_stream,
)
from common.vendors.fivecents.platforms import (
    add_platform,
    platform,
    restart_platform,
    update_platform,
)
from common.vendors.fivecents.servers import node_selector, servers
from common.vendors.fivecents.streams import (
    create_stream,
    parts_of,
    platforms,
    platforms_of,
    restart_stream,
    restore,
    set_disabled,
    soft_delete,
    stream,
    streams_page,
    update_stream,
)

__all__ = [
    "CDN_ONLY",
    "Codec",
    "PlatformFields",
    "PlatformNotFound",
    "Protocol",
    "Server",
    "StreamFields",
    "StreamNotFound",
    "add_platform",
    "create_stream",
    "is_stream",
    "node_selector",
    "parts_of",
    "platform",
    "platforms",
    "platforms_of",
    "restart_platform",
    "restart_stream",
    "restore",
    "servers",
    "set_disabled",
    "soft_delete",
    "stream",
    "streams_page",
    "update_platform",
    "update_stream",
]
