"""The asv dashboard works in a real browser: built from a quick run, served on localhost, and
loaded by headless Chromium, which must draw the main benchmarks' graphs with no JavaScript errors.

Opt-in (marked ``dashboard``, about a minute):
``FASTCONV_DASHBOARD_TEST=1 pytest tests/test_dashboard.py``.
Skips cleanly without Chromium or asv.  ``FASTCONV_DASHBOARD_SCREENSHOT=path.png`` saves the
first graph page there and the summary grid as ``path-grid.png``.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The graphs the dashboard must show, and the cheap parameter sets the quick run measures for them.
MAIN_BENCHMARKS = {
    "bench_conv.Conv2d.time_conv2d": r"'float32', 'b2_c16_32x32_k3', '(numba|cython|torch)', 1\)",
    "bench_im2col.Im2col.time_im2col": r"'float32', 'b4_c64_56x56_k3', '(numba|cython|torch)', 1\)",
    "bench_conv.LayerSuite.track_gflops": r"'mbv2_dw_c144', '(numba|cython|torch)'\)",
}

pytestmark = [
    pytest.mark.dashboard,
    pytest.mark.skipif(
        not os.environ.get("FASTCONV_DASHBOARD_TEST"),
        reason="browser test is opt-in: set FASTCONV_DASHBOARD_TEST=1",
    ),
]


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _WebSocket:
    """The smallest client that speaks the DevTools protocol: text frames, client-masked."""

    def __init__(self, url, timeout=30):
        host_port, path = url[len("ws://") :].split("/", 1)
        host, port = host_port.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.decode(errors="replace"))
        self.buf = head.split(b"\r\n\r\n", 1)[1]

    def close(self):
        self.sock.close()

    def send(self, text):
        data = text.encode()
        n = len(data)
        if n < 126:
            header = bytes([0x81, 0x80 | n])
        elif n < 65536:
            header = bytes([0x81, 0x80 | 126]) + n.to_bytes(2, "big")
        else:
            header = bytes([0x81, 0x80 | 127]) + n.to_bytes(8, "big")
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("DevTools connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._read(2), "big")
            elif n == 127:
                n = int.from_bytes(self._read(8), "big")
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the websocket")
            if opcode in (0x9, 0xA):  # ping/pong: not used by DevTools
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()


class _DevTools:
    """One page target: send commands, collect exceptions and console errors as they arrive."""

    def __init__(self, ws_url):
        self.ws = _WebSocket(ws_url)
        self.next_id = 0
        self.errors = []

    def _note(self, msg):
        method = msg.get("method")
        p = msg.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text")
            self.errors.append(f"uncaught: {text} at {d.get('url')}:{d.get('lineNumber')}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            self.errors.append(f"console.{p['type']}: {args}")
        elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
            e = p["entry"]
            self.errors.append(f"log: {e.get('text')} {e.get('url', '')}")

    def call(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._note(msg)

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return r.get("result", {}).get("value")

    def wait_for(self, expression, timeout=30.0):
        """Poll a JS expression until truthy (pumping events meanwhile); return its last value."""
        end = time.monotonic() + timeout
        value = None
        while time.monotonic() < end:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        return value


# asv's pages load jQuery, flot, bootstrap, md5 and stupidtable from public CDNs.  Offline (CI, this
# machine) the page only shows "external dependencies failed to load", so the test then points those
# tags at Debian's packaged copies (libjs-jquery, libjs-jquery-flot, libjs-bootstrap,
# node-blueimp-md5, libjs-jquery-stupidtable), without the CDN integrity hashes they cannot match.
_FLOT = "/usr/share/javascript/jquery-flot/"
_DEBIAN_JS = {
    "jquery-3.3.1.min.js": "/usr/share/javascript/jquery/jquery.min.js",
    "jquery.flot.min.js": _FLOT + "jquery.flot.min.js",
    "jquery.flot.time.min.js": _FLOT + "jquery.flot.time.min.js",
    "jquery.flot.selection.min.js": _FLOT + "jquery.flot.selection.min.js",
    "jquery.flot.categories.min.js": _FLOT + "jquery.flot.categories.min.js",
    "md5.min.js": "/usr/share/javascript/blueimp-md5/md5.min.js",
    "stupidtable.min.js": "/usr/share/javascript/jquery-stupidtable/stupidtable.min.js",
    "bootstrap.min.js": "/usr/share/javascript/bootstrap/js/bootstrap.min.js",
    "bootstrap.min.css": "/usr/share/javascript/bootstrap/css/bootstrap.min.css",
    # Not packaged: flot's bar-ordering plugin only offsets side-by-side bars; a no-op stands in.
    "jquery.flot.orderBars.js": None,
}


def _cdn_reachable(host="code.jquery.com"):
    try:
        socket.getaddrinfo(host, 443)
        return True
    except OSError:
        return False


def _use_local_js(html):
    """Rewrite the published pages to load their JS/CSS from html/vendor (Debian's copies)."""
    vendor = html / "vendor"
    vendor.mkdir(exist_ok=True)
    missing = [v for v in _DEBIAN_JS.values() if v and not os.path.exists(v)]
    if missing:
        pytest.skip("offline, and Debian's JS packages are missing: " + ", ".join(missing))
    for name, src in _DEBIAN_JS.items():
        if src:
            shutil.copy(src, vendor / name)
        else:
            (vendor / name).write_text("/* flot orderBars: not available offline */\n")
    pattern = re.compile(
        r'(src|href)="https://[^"]+/([^/"]+)"((?:\s+(?:integrity|crossorigin)="[^"]*")*)'
    )
    for page in html.glob("*.html"):
        text = page.read_text()

        def local(m):
            return f'{m.group(1)}="vendor/{m.group(2)}"' if m.group(2) in _DEBIAN_JS else m.group(0)

        text = pattern.sub(local, text)
        # flot 4 draws its legend as SVG over a rect that is black unless styled; 0.8.3 used HTML.
        text = text.replace("</head>", '<link rel="stylesheet" href="vendor/flot4.css"></head>', 1)
        page.write_text(text)
    (vendor / "flot4.css").write_text(".legendLayer rect.background { fill: #fff; }\n")


def _serve(directory):
    handler = functools.partial(_QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _run(cmd, env, timeout):
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    """Build the html from a quick run of the main benchmarks into a temporary asv tree."""
    if shutil.which("asv") is None:
        pytest.skip("asv not installed")
    if _chromium() is None:
        pytest.skip("chromium not installed")
    from asv import util as asv_util

    tmp = tmp_path_factory.mktemp("asv")
    conf = asv_util.load_json(os.path.join(ROOT, "asv.conf.json"), js_comments=True)
    conf.update(
        repo=ROOT,
        benchmark_dir=os.path.join(ROOT, "benchmarks"),
        env_dir=str(tmp / "env"),
        results_dir=str(tmp / "results"),
        html_dir=str(tmp / "html"),
    )
    conf_path = tmp / "asv.conf.json"
    conf_path.write_text(json.dumps(conf))
    env = dict(os.environ, HOME=str(tmp))  # asv's machine file goes to the temporary HOME
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    asv = [sys.executable, "-m", "asv"]
    _run(asv + ["machine", "--yes", "--config", str(conf_path)], env, 60)
    bench = [f"{name}\\({regex}" for name, regex in MAIN_BENCHMARKS.items()]
    cmd = asv + ["run", "--config", str(conf_path), "--python=same", "--quick"]
    cmd += ["--set-commit-hash", head]
    for b in bench:
        cmd += ["-b", b]
    _run(cmd, env, 600)
    _run(asv + ["publish", "--config", str(conf_path)], env, 120)
    html = tmp / "html"
    assert (html / "index.html").exists()
    if not _cdn_reachable():
        _use_local_js(html)
    return html


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium not installed")
    profile = tmp_path_factory.mktemp("chromium")
    proc = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--no-first-run",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            "--window-size=1400,1000",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        end = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > end or proc.poll() is not None:
                pytest.fail("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        devtools = _DevTools(pages[0]["webSocketDebuggerUrl"])
        try:
            yield devtools
        finally:
            devtools.ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _unmeasured_summary(error):
    """The summary page asks for every known benchmark's thumbnail; the quick run measured only
    the main ones, so the others' thumbnails are 404s, which is not a dashboard fault."""
    m = re.search(r"status of 404 .* http://127\.0\.0\.1:\d+/graphs/summary/([^?]+)\.json", error)
    return bool(m) and m.group(1) not in MAIN_BENCHMARKS


def _open(browser, url):
    for domain in ("Page", "Runtime", "Log"):
        browser.call(f"{domain}.enable")
    browser.call("Page.navigate", url=url)
    browser.wait_for("document.readyState === 'complete'")


def test_dashboard_loads_without_js_errors(dashboard, browser):
    server = _serve(str(dashboard))
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        _open(browser, base + "index.html")
        # The summary grid lists every benchmark; wait until asv's JS has rendered it.
        names = browser.wait_for(
            "Array.from(document.querySelectorAll('.benchmark-text, .summarygrid a, a'))"
            ".map(e => e.textContent.trim()).filter(t => t.includes('.')).join('\\n')"
        )
        for name in MAIN_BENCHMARKS:
            assert name.split(".", 1)[1] in (names or ""), f"{name} not on the summary page"

        shot = os.environ.get("FASTCONV_DASHBOARD_SCREENSHOT")
        if shot:  # the summary grid, next to the graph page saved below
            time.sleep(1.0)
            data = browser.call("Page.captureScreenshot", format="png")["data"]
            with open(os.path.splitext(shot)[0] + "-grid.png", "wb") as f:
                f.write(base64.b64decode(data))
        for i, name in enumerate(MAIN_BENCHMARKS):
            browser.call("Page.navigate", url=base + "index.html#" + name)
            browser.wait_for("document.readyState === 'complete'")
            # flot keeps its plot object on the container: count the data points it drew.
            points = browser.wait_for(
                "(() => { const p = window.$ && $('#main-graph').data('plot');"
                " return p ? p.getData().reduce((n, s) => n + s.data.length, 0) : 0; })()"
            )
            assert points, f"no data points drawn for {name}"
            assert not browser.evaluate("window.$ && $('#error').is(':visible')"), name
            title = browser.evaluate("document.body.innerText")
            assert name.rsplit(".", 1)[1] in title, f"{name}: graph page does not name it"
            if shot and i == 0:
                time.sleep(1.0)
                data = browser.call("Page.captureScreenshot", format="png")["data"]
                with open(shot, "wb") as f:
                    f.write(base64.b64decode(data))
        errors = [e for e in browser.errors if not _unmeasured_summary(e)]
        assert not errors, "JavaScript errors:\n" + "\n".join(errors)
    finally:
        server.shutdown()
        server.server_close()
