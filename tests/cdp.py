#!/usr/bin/python3
"""cdp.py URL OUTDIR LOOKS GAP: open URL in headless Chromium, and LOOKS
times, GAP seconds apart, save the rendered DOM (OUTDIR/domN.html) of the
same page (no reload); then a screenshot (OUTDIR/shot.png).  The DevTools
protocol over a minimal websocket client (standard library only)."""
import base64, json, os, socket, subprocess, sys, tempfile, time, urllib.request

url, out, looks, gap = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
prof = tempfile.mkdtemp()
br = subprocess.Popen(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                       "--user-data-dir=" + prof, "--remote-debugging-port=0",
                       "--window-size=1280,1500", "about:blank"],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    port_file = os.path.join(prof, "DevToolsActivePort")
    for _ in range(300):
        if os.path.exists(port_file) and open(port_file).read().strip():
            break
        time.sleep(0.1)
    port = int(open(port_file).read().split()[0])
    pages = json.load(urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port))
    ws_url = [p for p in pages if p["type"] == "page"][0]["webSocketDebuggerUrl"]
    path = ws_url.split(str(port), 1)[1]
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
               % (path, port, key)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    buf = buf.split(b"\r\n\r\n", 1)[1]

    def recv_exact(n):
        global buf
        while len(buf) < n:
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError
            buf += chunk
        d, buf = buf[:n], buf[n:]
        return d

    def recv_msg():
        data = b""
        while True:
            h = recv_exact(2)
            fin, ln = h[0] & 0x80, h[1] & 0x7f
            if ln == 126:
                ln = int.from_bytes(recv_exact(2), "big")
            elif ln == 127:
                ln = int.from_bytes(recv_exact(8), "big")
            data += recv_exact(ln)
            if fin:
                return json.loads(data)

    ids = [0]
    def call(method, **params):
        ids[0] += 1
        msg = json.dumps({"id": ids[0], "method": method, "params": params}).encode()
        mask = os.urandom(4)
        hdr = bytes([0x81]) + (bytes([0x80 | len(msg)]) if len(msg) < 126 else
                               bytes([0x80 | 126]) + len(msg).to_bytes(2, "big"))
        s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(msg)))
        while True:
            m = recv_msg()
            if m.get("id") == ids[0]:
                if "error" in m:
                    raise RuntimeError(m["error"])
                return m["result"]
            if m.get("method") == "Log.entryAdded":
                print("console:", m["params"]["entry"].get("text"), file=sys.stderr)

    def evaluate(expr):
        return call("Runtime.evaluate", expression=expr, returnByValue=True)["result"].get("value")

    call("Log.enable")
    call("Page.navigate", url=url)
    for _ in range(100):   # the first status event rendered
        if evaluate("document.querySelectorAll('#forest .node').length") :
            break
        time.sleep(0.1)
    evaluate("window.__look = 'same page'")
    for n in range(1, looks + 1):
        if n > 1:
            time.sleep(gap)
        if evaluate("window.__look") != "same page":
            sys.exit("the page reloaded")
        with open(os.path.join(out, "dom%d.html" % n), "w", encoding="utf-8") as f:
            f.write(evaluate("document.documentElement.outerHTML"))
    h = evaluate("document.documentElement.scrollHeight")
    call("Emulation.setDeviceMetricsOverride", width=1280, height=int(h), deviceScaleFactor=1, mobile=False)
    time.sleep(0.3)
    shot = call("Page.captureScreenshot", format="png")
    with open(os.path.join(out, "shot.png"), "wb") as f:
        f.write(base64.b64decode(shot["data"]))
finally:
    br.kill()
    br.wait()
