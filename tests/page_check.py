"""Drives the daemon's page in headless Chromium through the DevTools protocol (a real
browser, a real client: websockets): waits for it to show healthy, writes a note on disk
and waits for it in the live event list, searches, opens a note; a screenshot of each
step goes to OUT. Prints one JSON line of what it saw.

usage: page_check.py CHROMIUM URL VAULT OUT
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

from websockets.sync.client import connect


class Page:
    def __init__(self, ws):
        self.ws, self.next_id = ws, 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, js):
        r = self.call("Runtime.evaluate", expression=js, returnByValue=True)
        return r.get("result", {}).get("value")

    def wait(self, what, js, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(js)
            if value:
                return value
            time.sleep(0.02)
        raise SystemExit(f"timed out waiting for {what}; page text: {self.eval('document.body.innerText')}")

    def shot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))


def main() -> int:
    chromium, url, vault, out = sys.argv[1:5]
    os.makedirs(out, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="vk-chromium-")
    browser = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--remote-debugging-port=0", f"--user-data-dir={profile}", "--window-size=1280,900",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while not (os.path.exists(port_file) and open(port_file).read().count("\n") >= 1):
            if time.monotonic() > deadline or browser.poll() is not None:
                raise SystemExit("chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        port = open(port_file).read().split("\n")[0].strip()
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        target = next(t for t in targets if t["type"] == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None) as ws:
            page = Page(ws)
            page.call("Page.enable")
            page.call("Page.navigate", url=url)
            page.wait("healthy", "document.getElementById('health').textContent === 'healthy'")
            page.wait("the event stream", "window.vkStreamOpen === true")
            page.shot(os.path.join(out, "1-healthy.png"))
            name = f"from-disk-{int(time.time() * 1000)}.md"
            with open(os.path.join(vault, name), "w") as f:
                f.write("# Written on disk\n\nA pelican flew by.\n")
            t0 = time.monotonic()
            page.wait("the note in the event list",
                      f"[...document.querySelectorAll('#events tr.event')].some(r => r.textContent.includes('{name}'))")
            event_ms = (time.monotonic() - t0) * 1000
            page.shot(os.path.join(out, "2-event.png"))
            page.eval("document.getElementById('q').value = 'pelican';"
                      "document.querySelector('#search button').click(); true")
            hits = page.wait("search results", "document.querySelectorAll('#hits tr.hit').length")
            page.shot(os.path.join(out, "3-search.png"))
            page.eval("document.querySelector('#hits tr.hit a').click(); true")
            page.wait("the note with its backlinks", "document.getElementById('note').textContent.includes('Backlinks')")
            note = page.eval("document.getElementById('note').innerText")
            page.shot(os.path.join(out, "4-note.png"))
            print(json.dumps({"healthy": True, "event": name, "event_ms": round(event_ms, 1),
                              "hits": hits, "note": note}))
    finally:
        browser.kill()
        browser.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
