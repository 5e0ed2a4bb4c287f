"""A headless Chromium driven over the DevTools protocol on a pipe, for the tests of our HTML pages.

Debian's `chromium` (listed in .ci/debian-packages.txt) started with `--remote-debugging-pipe` reads
protocol commands on fd 3 and writes replies and events on fd 4, each a JSON message ended by a NUL
byte. That is all the client needs: no websocket library, no network port. Written by hand (about 100
lines) to keep the tests free of a browser-automation dependency: Selenium would also need Debian's
chromium-driver, and playwright and pyppeteer fetch their own browser builds by default.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

LOAD_TIMEOUT_S = 60


@dataclass
class PageReport:
    """What a loaded page did: console errors, uncaught exceptions, failed loads, and values of probes."""

    errors: list[str] = field(default_factory=list)
    values: dict = field(default_factory=dict)


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        raise RuntimeError("chromium is not installed: `sudo apt-get install -y chromium` (or `just test`, which does it)")
    return path


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, width: int = 1200, height: int = 900):
        self.width, self.height = width, height
        self._next_id = 0
        self._buffer = b""
        self.events: list[dict] = []

    def __enter__(self) -> Browser:
        self._profile = tempfile.mkdtemp(prefix="tierclip-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_pipes():  # in the child: its fd 3 reads our commands, its fd 4 carries its replies
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        args = [chromium_path(), "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                f"--user-data-dir={self._profile}", f"--window-size={self.width},{self.height}", "about:blank"]
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, preexec_fn=wire_pipes, pass_fds=(3, 4))
        os.close(to_child_r)
        os.close(from_child_w)
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self._session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.call("Browser.close")
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_child)
        os.close(self._from_child)
        shutil.rmtree(self._profile, ignore_errors=True)

    # -- protocol ---------------------------------------------------------------------------------
    def call(self, method: str, session: bool = False, **params) -> dict:
        """Send one command and wait for its reply; events that arrive meanwhile are kept in `events`."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(time.monotonic() + LOAD_TIMEOUT_S)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no reply from chromium")
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + LOAD_TIMEOUT_S
        while True:
            for event in self.events:
                if event.get("method") == method:
                    self.events.remove(event)
                    return event
            self.events.append(self._read(deadline))

    # -- what the tests use -----------------------------------------------------------------------
    def load(self, path: Path, probes: dict[str, str]) -> PageReport:
        """Open file://PATH, wait for its load event, evaluate each probe (a JS expression returning JSON-able data)."""
        self.events.clear()
        self.call("Page.navigate", session=True, url=Path(path).resolve().as_uri())
        self.wait_for("Page.loadEventFired")
        values = {name: self.evaluate(expression) for name, expression in probes.items()}
        return PageReport(errors=self._errors(), values=values)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def screenshot(self, out: Path, max_height: int | None = None) -> Path:
        """A PNG of the page from its top (beyond the window), at the browser's width, at most `max_height` px tall."""
        height = self.call("Page.getLayoutMetrics", session=True)["cssContentSize"]["height"]
        clip = {"x": 0, "y": 0, "width": self.width, "height": min(height, max_height or height), "scale": 1}
        data = self.call("Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True, clip=clip)["data"]
        out.write_bytes(base64.b64decode(data))
        return out

    def _errors(self) -> list[str]:
        errors = []
        for event in self.events:
            params = event.get("params", {})
            if event.get("method") == "Runtime.exceptionThrown":
                errors.append(f"exception: {params['exceptionDetails'].get('text')}")
            elif event.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(f"console.{params['type']}: {[a.get('value') for a in params.get('args', [])]}")
            elif event.get("method") == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
        return errors
