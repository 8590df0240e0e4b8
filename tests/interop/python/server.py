"""Python `websockets` echo server speaking the interop probe protocol (see tests/interop/README.md).

Prints "PORT <n>" once listening and "CLOSED <code> <reason>" when a client's connection closes.
Run with Debian's /usr/bin/python3 (package python3-websockets).
"""
import asyncio
import sys

import websockets


async def handler(ws, path=None):
    try:
        async for msg in ws:
            if isinstance(msg, str):
                if msg.startswith("ping:"):
                    waiter = await ws.ping(msg[5:])
                    await waiter  # resolves when the pong with this payload arrives
                    await ws.send("pong:" + msg[5:])
                    continue
                if msg.startswith("frag:"):
                    _, n, text = msg.split(":", 2)
                    n = int(n)
                    size = -(-len(text) // n)
                    await ws.send([text[i * size:(i + 1) * size] for i in range(n)])
                    continue
                if msg.startswith("close:"):
                    _, code, reason = msg.split(":", 2)
                    await ws.close(int(code), reason)
                    break
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass
    finally:
        await ws.wait_closed()
        print(f"CLOSED {ws.close_code} {ws.close_reason}", flush=True)


async def main():
    # `server.py deflate` keeps websockets' default permessage-deflate; otherwise compression is off.
    compression = "deflate" if sys.argv[1:] == ["deflate"] else None
    async with websockets.serve(handler, "127.0.0.1", 0, max_size=None, compression=compression) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"PORT {port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
