"""Reads the daemon's event stream over WebSocket (a real client: websockets) through
its Unix socket, printing each message as one line, until COUNT messages or a timeout.

usage: ws_client.py SOCKET PATH COUNT
"""

import sys

from websockets.sync.client import unix_connect


def main() -> int:
    socket, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with unix_connect(socket, "ws://localhost" + path, open_timeout=10) as ws:
        for _ in range(count):
            print(ws.recv(timeout=30), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
