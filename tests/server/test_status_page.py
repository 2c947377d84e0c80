#!/usr/bin/python3
"""test_status_page.py - server_status_page: GET / (the operator's status
page, on the operator's listener) rendered in headless Chromium (Debian's chromium) against a real
rendezvousd with two authenticated nodes: once the page's script has run,
the figures it shows equal /status, the health banner says healthy, and the
page loads nothing from outside the server. A screenshot (phone width) is
saved in --out for the record. Then a server whose store cannot answer
(--redis at a socket where no Redis listens: /healthz 503) shows the red
UNHEALTHY banner.

Usage: test_status_page.py --server PATH --out DIR
"""
import argparse, asyncio, json, os, re, shutil, subprocess, sys, tempfile, time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_protocol_node as t  # signing helpers of the Python node
import nacl.signing, websockets

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def start_server(path, tmp, extra=()):
    log = open(os.path.join(tmp, "server%d.log" % len(extra)), "w")
    p = subprocess.Popen([path, "--listen", "127.0.0.1", "--port", "0", "--stun-port", "0",
                          "--operator-listen", "127.0.0.1:0",
                          "--db", os.path.join(tmp, "r.db"), "--name", "py-rendezvous"]
                         + list(extra), stdout=log, stderr=log)
    for _ in range(200):
        time.sleep(0.05)
        text = open(log.name).read()
        m = re.search(r"listening on ws://127.0.0.1:(\d+)", text)
        op = re.search(r"operator on http://127.0.0.1:(\d+)", text)
        if m and op:
            return p, int(m.group(1)), int(op.group(1))
    p.kill()
    fail("server did not start: " + open(log.name).read())


async def join(port):
    key = nacl.signing.SigningKey.generate()
    my = key.verify_key.encode().hex()
    ws = await websockets.connect("ws://127.0.0.1:%d/v1" % port, subprotocols=["rendezvous.v1"],
                                  compression=None)
    ch, _ = await t.recv_type(ws, "challenge")
    hello = {"nodeID": my, "nonce": ch["nonce"], "server": ch["server"],
             "timestamp": t.now_ms(), "natType": "fullCone"}
    await ws.send(json.dumps({"hello": t.sign(key, "hello", hello)}))
    await t.recv_type(ws, "welcome")
    return ws


def chromium(*args, profile):
    exe = shutil.which("chromium")
    if not exe:
        fail("chromium not installed (scripts/bootstrap --test installs it)")
    cmd = [exe] + CHROMIUM_FLAGS + ["--user-data-dir=" + profile] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    return r.stdout, r.stderr


def text_of(dom, ident):
    m = re.search(r'id="%s"[^>]*>([^<]*)<' % re.escape(ident), dom)
    return m.group(1) if m else None


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rdv-status-page-")
    srv, port, op_port = start_server(a.server, tmp)
    try:
        nodes = [await join(port), await join(port)]
        url = "http://127.0.0.1:%d/" % op_port  # the operator's listener
        page = urllib.request.urlopen(url, timeout=5)
        html = page.read().decode()
        if "text/html" not in page.headers.get("Content-Type", ""):
            fail("GET / is not text/html")
        if re.search(r'(src|href)="(https?:)?//', html):
            fail("the page loads something from outside the server")
        # Chromium runs the script (virtual time lets fetch() finish)
        dom, err = chromium("--virtual-time-budget=5000", "--dump-dom", url,
                            profile=os.path.join(tmp, "profile1"))
        status = json.loads(urllib.request.urlopen(url + "status", timeout=5).read())
        want = {
            "name": status["name"],
            "version": status["version"],
            "nodes": str(status["nodesAuthenticated"]),
            "connections": str(status["connections"]),
            "queue": str(status["offlineQueueDepth"]),
            "relayOpen": str(status["relay"]["sessionsOpen"]),
            "relayBytes": str(status["relay"]["bytes"]),
            "stun": "udp %d" % status["stun"]["port"] if status["stun"]["enabled"] else "off",
            "engine": status["cluster"]["engine"],
            "instances": str(status["cluster"]["instances"]),
        }
        for ident, value in want.items():
            got = text_of(dom, ident)
            if got != value:
                fail("%s: the page shows %r, /status says %r\n%s\n%s" % (ident, got, value,
                                                                        dom[:3000], err[-2000:]))
        if status["nodesAuthenticated"] != 2:
            fail("expected 2 nodes, /status says %r" % status["nodesAuthenticated"])
        if 'class="ok"' not in dom or ">healthy<" not in dom:
            fail("the health banner does not say healthy:\n" + dom[:2000])
        if "maxMessageBytes" not in dom:
            fail("the limits table is empty")
        os.makedirs(a.out, exist_ok=True)
        shot = os.path.join(a.out, "status_page.png")
        chromium("--virtual-time-budget=5000", "--window-size=412,915",
                 "--screenshot=" + shot, url, profile=os.path.join(tmp, "profile2"))
        if not os.path.exists(shot) or os.path.getsize(shot) < 1000:
            fail("no screenshot")
        print("screenshot: " + shot)
        for ws in nodes:
            await ws.close()
        # unhealthy: a store that does not answer
        bad, _, bport = start_server(a.server, tmp,
                                     ["--redis", "unix://" + tmp + "/no-redis.sock"])
        try:
            dom, _ = chromium("--virtual-time-budget=5000", "--dump-dom",
                              "http://127.0.0.1:%d/" % bport, profile=os.path.join(tmp, "p3"))
            if 'class="bad"' not in dom or "UNHEALTHY" not in dom:
                fail("no unhealthy banner with /healthz 503:\n" + dom[:2000])
        finally:
            bad.terminate()
            bad.wait(timeout=15)
    finally:
        srv.terminate()
        srv.wait(timeout=10)
    rc = srv.returncode
    if rc != 0:
        fail("server exit %s:\n%s" % (rc, open(os.path.join(tmp, "server0.log")).read()))
    shutil.rmtree(tmp, ignore_errors=True)
    print("server_status_page: passed")


asyncio.run(main())
