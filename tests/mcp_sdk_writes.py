"""The MCP write tools driven by the official Python MCP SDK (pip `mcp`), as a real client.

Usage: mcp_sdk_writes.py VAULTKEEPER_BIN VAULT

The vault must be a git repository watched by a running daemon (the Rust test `writes_sdk`
prepares a copy of obsidian-help-en and starts it), so the cache follows the writes. Each write tool is called once, and checked
against the file on disk and `git log -p`; a stale hash is refused and the human's text
survives; `git revert` of one tool commit restores the file exactly. Exits non-zero on the
first failed check, printing what differed.
"""

import asyncio
import json
import os
import subprocess
import sys
import time

from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client

BIN, VAULT = sys.argv[1], sys.argv[2]
NOTE = "Getting started/Link notes.md"


def git(*args):
    return subprocess.run(
        ["git", *args], cwd=VAULT, check=True, capture_output=True, text=True
    ).stdout


def disk(rel):
    with open(os.path.join(VAULT, rel), encoding="utf-8") as f:
        return f.read()


def check(cond, what):
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)


async def call(session, tool, args):
    r = await session.call_tool(tool, args)
    text = r.content[0].text if r.content else ""
    return bool(r.is_error), text


async def ok(session, tool, args):
    err, text = await call(session, tool, args)
    check(not err, f"{tool}({args}) failed: {text}")
    return json.loads(text)


async def until_indexed(session, path):
    """Waits (30 s at most) until the daemon's cache knows `path`."""
    deadline = time.monotonic() + 30
    while True:
        err, _ = await call(session, "read_note", {"note": path})
        if not err:
            return
        check(time.monotonic() < deadline, f"{path} indexed within 30 s")
        await asyncio.sleep(0.1)


async def main():
    params = StdioServerParameters(
        command=BIN, args=["--vault", VAULT, "mcp", "--write"], env=dict(os.environ)
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(
            read, write, client_info=types.Implementation(name="python-sdk-test", version="1.0")
        ) as s:
            await s.initialize()
            tools = {t.name: t for t in (await s.list_tools()).tools}
            for t in ["create_note", "append_to_note", "replace_section", "set_frontmatter_field",
                      "remove_frontmatter_field", "replace_text", "move_note", "delete_note"]:
                check(t in tools, f"{t} listed")
            limit = tools["search_notes"].input_schema["properties"]["limit"]
            check(limit.get("type") == "integer" and limit.get("maximum") == 200, f"limit schema {limit}")

            note = await ok(s, "read_note", {"note": NOTE})
            h = note["hash"]
            check(isinstance(h, str) and len(h) == 64, f"read_note gives a hash: {h}")

            # append: on disk, in git log -p, message names tool and client.
            r = await ok(s, "append_to_note", {"path": NOTE, "expected_hash": h, "text": "Appended by the SDK."})
            check(disk(NOTE).endswith("Appended by the SDK.\n"), "append on disk")
            log = git("log", "-1", "-p", "--format=%B")
            check("mcp append_to_note: " + NOTE in log, f"message: {log[:300]}")
            check("Client: python-sdk-test 1.0" in log, "client in message")
            check("+Appended by the SDK." in log, "diff in git log -p")
            append_commit = r["commit"]

            r = await ok(s, "set_frontmatter_field", {"path": NOTE, "expected_hash": r["hash"], "key": "status", "value": "reviewed"})
            check(disk(NOTE).startswith("---\n") and "\nstatus: reviewed\n" in disk(NOTE), "field set")
            r = await ok(s, "remove_frontmatter_field", {"path": NOTE, "expected_hash": r["hash"], "key": "status"})
            check("status: reviewed" not in disk(NOTE), "field removed")
            r = await ok(s, "replace_text", {"path": NOTE, "expected_hash": r["hash"], "old_text": "Appended by the SDK.", "new_text": "Replaced by the SDK."})
            check("Replaced by the SDK." in disk(NOTE) and "Appended by" not in disk(NOTE), "replace_text")

            created = await ok(s, "create_note", {"path": "SDK/Scratch.md", "content": "# Scratch\n\n## Part\nold\n"})
            r = await ok(s, "replace_section", {"path": "SDK/Scratch.md", "expected_hash": created["hash"], "heading": "Part", "content": "new"})
            check(disk("SDK/Scratch.md") == "# Scratch\n\n## Part\nnew\n", "replace_section")
            await until_indexed(s, "SDK/Scratch.md")
            moved = await ok(s, "move_note", {"from": "SDK/Scratch.md", "to": "SDK/Moved.md", "expected_hash": r["hash"]})
            check(os.path.exists(os.path.join(VAULT, "SDK/Moved.md")), "moved")
            await ok(s, "delete_note", {"path": "SDK/Moved.md", "expected_hash": moved["hash"]})
            check(os.path.exists(os.path.join(VAULT, ".trash/SDK/Moved.md")), "trashed")

            # A stale hash is refused and the human's text survives.
            human = disk(NOTE) + "A human's line.\n"
            with open(os.path.join(VAULT, NOTE), "w", encoding="utf-8") as f:
                f.write(human)
            err, text = await call(s, "append_to_note", {"path": NOTE, "expected_hash": h, "text": "stale"})
            check(err and "changed since it was read" in text, f"stale refused: {text}")
            check(disk(NOTE) == human, "human text survives")
            with open(os.path.join(VAULT, NOTE), "w", encoding="utf-8") as f:
                f.write(human[: -len("A human's line.\n")])

            # A path outside the vault.
            err, text = await call(s, "create_note", {"path": "../outside.md", "content": "x"})
            check(err and "outside the vault" in text, f"outside refused: {text}")
            check(not os.path.exists(os.path.join(VAULT, "..", "outside.md")), "nothing outside")

    # Let the daemon's git consumer catch up first (it may commit the human's edit and its undo).
    subprocess.run([BIN, "--vault", VAULT, "commit"], check=True, capture_output=True)
    # git revert of the append commit restores the file as it was before it.
    before = git("show", f"{append_commit}~1:{NOTE}")
    # Undo the later edits first (newest first), then the append: the file is as before it.
    later = git("rev-list", f"{append_commit}..HEAD", "--", NOTE).split()
    for c in later + [append_commit]:
        git("revert", "--no-edit", c)
    check(disk(NOTE) == before, "git revert restores the file exactly")
    print("ok: every write tool checked with the Python MCP SDK")


asyncio.run(main())
