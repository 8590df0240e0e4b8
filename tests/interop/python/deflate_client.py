"""Python `websockets` client with its default permessage-deflate against a probe server.

Usage: /usr/bin/python3 deflate_client.py URL. Prints one JSON object with the outcome of every step.
"""
import asyncio
import json
import os
import sys

import websockets

results = {}


def chat(i):
    return json.dumps({"type": "message", "room": "general", "offset": i, "from": "alice",
                       "text": f"hello number {i}, how are you all doing today?"})


async def scenario(url):
    async with websockets.connect(url, max_size=None) as ws:  # compression="deflate" is the default
        results["extensions"] = ws.response_headers.get("Sec-WebSocket-Extensions", "")
        await ws.send("ext?")
        results["serverAgreed"] = await ws.recv()
        ok = True
        for r in range(3):
            text = "\n".join(chat(i + r) for i in range(2000))
            await ws.send(text)
            ok = ok and (await ws.recv()) == text
        results["compressibleEcho"] = ok
        noise = os.urandom(1024 * 1024)
        await ws.send(noise)
        results["incompressibleEcho"] = (await ws.recv()) == noise
        await ws.send("hi")
        results["small"] = (await ws.recv()) == "hi"
        frag = "".join(chat(i) for i in range(300))
        await ws.send([frag[:5000], frag[5000:12000], frag[12000:]])  # one compressed message in three frames
        results["fragmented"] = (await ws.recv()) == frag
        await ws.close(4001, "bye from python")
        results["clientClose"] = {"code": ws.close_code, "reason": ws.close_reason}


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
