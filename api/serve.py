"""`streamfleet api` runs this: uvicorn serving `api.app:create_app`, with a main loop that
wakes once a second instead of ten times.

uvicorn's loop wakes every 0.1 s to see whether a signal asked it to exit (and refreshes the
`Date` header every tenth time). On a farm at rest those wake-ups were most of what the API
process cost. Here the loop wakes each second, for the `Date` header, and at once when a
signal comes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from types import FrameType

import uvicorn


class QuietServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exiting = asyncio.Event()

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 10) % 864000  # a second a pass: the Date header each time
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exiting.wait(), 1.0)
            should_exit = await self.on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._exiting.set)


def main() -> None:
    parser = argparse.ArgumentParser(prog="streamfleet api")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    config = uvicorn.Config(
        "api.app:create_app", factory=True, host=args.host, port=args.port, access_log=False
    )
    QuietServer(config).run()


if __name__ == "__main__":
    main()
