"""MCP over the daemon's streamable-HTTP transport, driven by the official Python MCP SDK.

Usage: mcp_http_client.py URL SOCKET TOKEN WORD NOTE

URL is the daemon's TCP endpoint (`http://127.0.0.1:PORT/mcp`), SOCKET its Unix socket, TOKEN
the API's bearer token, WORD a word the vault's note NOTE holds. Checks, in order: over TCP
without the token the endpoint answers 401; over TCP with the token and over the socket without
one, the SDK initializes, lists the read tools (and no write tools: `[mcp] write` is off), finds
NOTE by WORD and reads it. Exits non-zero on the first failed check, printing what differed.
"""

import asyncio
import json
import sys

import httpx2
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client

URL, SOCKET, TOKEN, WORD, NOTE = sys.argv[1:6]
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-03-26",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


async def session_checks(client, url, how):
    async with streamable_http_client(url, http_client=client) as (read, write):
        async with ClientSession(
            read, write, client_info=types.Implementation(name="http-sdk-test", version="1.0")
        ) as s:
            await s.initialize()
            tools = {t.name for t in (await s.list_tools()).tools}
            for t in ["search_notes", "read_note", "list_backlinks", "recent_changes", "query_sql"]:
                check(t in tools, f"{how}: {t} listed ({sorted(tools)})")
            check("create_note" not in tools, f"{how}: write tools listed while [mcp] write is off")
            r = await s.call_tool("search_notes", {"query": WORD})
            text = r.content[0].text if r.content else ""
            check(not r.is_error, f"{how}: search_notes failed: {text}")
            check(NOTE in text, f"{how}: search_notes({WORD}) misses {NOTE}: {text}")
            r = await s.call_tool("read_note", {"note": NOTE})
            text = r.content[0].text if r.content else ""
            check(not r.is_error, f"{how}: read_note failed: {text}")
            check(json.loads(text).get("path") == NOTE, f"{how}: read_note: {text[:300]}")
    print(f"ok: {how}")


async def main():
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient() as bare:
        r = await bare.post(URL, json=INIT, headers=headers)
        check(r.status_code == 401, f"no token: {r.status_code} {r.text[:200]}")
        r = await bare.post(URL, json=INIT, headers={**headers, "Authorization": "Bearer nope"})
        check(r.status_code == 401, f"wrong token: {r.status_code} {r.text[:200]}")
    print("ok: 401 without the token")
    async with httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=httpx2.Timeout(30, read=300)
    ) as tcp:
        await session_checks(tcp, URL, "tcp with the token")
    async with httpx2.AsyncClient(
        transport=httpx2.AsyncHTTPTransport(uds=SOCKET), timeout=httpx2.Timeout(30, read=300)
    ) as uds:
        await session_checks(uds, "http://localhost/mcp", "unix socket")
    print("ok: mcp over http")


asyncio.run(main())
