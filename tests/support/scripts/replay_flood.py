"""Twenty sockets of one address replaying from `after` (argv: socket URL, seconds);
prints how many messages they received in `seconds`. In a process of its own: a client
reading 10,000 frames a second would slow the neighbour's own process."""

import asyncio
import json
import sys

from websockets.asyncio.client import connect

SOCKETS = 20


class Replays:
    def __init__(self, url: str) -> None:
        self.url = url
        self.received = 0

    async def replay(self) -> None:
        headers = {"X-Real-IP": "10.9.9.9"}
        async with connect(self.url, max_queue=None, additional_headers=headers) as ws:
            async for raw in ws:
                self.received += json.loads(raw)["type"] == "message"


async def main(url: str, seconds: float) -> None:
    replays = Replays(url)
    tasks = [asyncio.create_task(replays.replay()) for _ in range(SOCKETS)]
    await asyncio.sleep(seconds)
    print(replays.received)
    for task in tasks:
        task.cancel()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
