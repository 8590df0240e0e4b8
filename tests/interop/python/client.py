"""Python `websockets` client running the interop scenario against a server speaking the probe protocol.

Usage: /usr/bin/python3 client.py URL. Prints one JSON object with the outcome of every step.
"""
import asyncio
import json
import os
import re
import sys

import websockets

results = {}


async def scenario(url):
    async with websockets.connect(url, max_size=None, compression=None) as ws:
        await ws.send("hello")
        results["text"] = (await ws.recv()) == "hello"
        await ws.send(b"\x00\x01\x02\xff")
        results["binary"] = (await ws.recv()) == b"\x00\x01\x02\xff"
        await ws.send("")
        results["emptyText"] = (await ws.recv()) == ""
        await ws.send(b"")
        results["emptyBinary"] = (await ws.recv()) == b""
        await ws.send(["frag-", "ment"])  # an iterable is sent as a fragmented message
        results["fragmented"] = (await ws.recv()) == "frag-ment"
        big = os.urandom(16 * 1024 * 1024)
        await ws.send(big)
        results["big16MiB"] = (await ws.recv()) == big
        waiter = await ws.ping(b"from-python")
        await asyncio.wait_for(waiter, 10)
        results["clientPing"] = True
        await ws.send("ping:from-server")
        results["serverPing"] = (await ws.recv()) == "pong:from-server"
        await ws.send("frag:3:abcdefgh")
        results["serverFragmented"] = (await ws.recv()) == "abcdefgh"
        await ws.close(4001, "bye from python")
        results["clientClose"] = {"code": ws.close_code, "reason": ws.close_reason}

    url2 = re.sub(r"tag=([^&]*)", lambda m: m.group(0) + "-2", url)
    async with websockets.connect(url2) as ws2:
        await ws2.send("close:4002:server bye")
        try:
            await ws2.recv()
        except websockets.ConnectionClosed:
            pass
        await ws2.wait_closed()
        results["serverClose"] = {"code": ws2.close_code, "reason": ws2.close_reason}


async def main():
    try:
        await asyncio.wait_for(scenario(sys.argv[1]), 60)
        print(json.dumps(results))
        return 0
    except Exception as e:  # report, do not crash without output
        results["error"] = repr(e)
        print(json.dumps(results))
        return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
