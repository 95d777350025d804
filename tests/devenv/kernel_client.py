"""Run one cell through the Jupyter server's kernel websocket; executed *inside* the dev container (its tornado),
so the test needs no websocket client of its own.

usage: python kernel_client.py PORT TOKEN KERNEL_ID CODE  -> prints the cell's stdout, exit 1 on an error reply.
"""

import asyncio
import json
import sys
import uuid

from tornado.websocket import websocket_connect


async def main(port: str, token: str, kernel_id: str, code: str) -> int:
    url = f"ws://127.0.0.1:{port}/api/kernels/{kernel_id}/channels?token={token}"
    ws = await websocket_connect(url)
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "username": "test",
        "session": uuid.uuid4().hex,
        "msg_type": "execute_request",
        "version": "5.3",
    }
    request = {
        "header": header,
        "parent_header": {},
        "metadata": {},
        "channel": "shell",
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
    }
    await ws.write_message(json.dumps(request))
    status = 0
    while True:
        raw = await asyncio.wait_for(ws.read_message(), timeout=60)
        if raw is None:
            return 2
        msg = json.loads(raw)
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = msg["header"]["msg_type"]
        if kind == "stream":
            sys.stdout.write(msg["content"]["text"])
        elif kind == "error":
            sys.stdout.write("\n".join(msg["content"]["traceback"]))
            status = 1
        elif kind == "execute_reply" and msg.get("channel") == "shell":
            return status if msg["content"]["status"] == "ok" else 1
        elif kind == "status" and msg["content"]["execution_state"] == "idle" and status:
            return status


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:5])))
