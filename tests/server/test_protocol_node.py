#!/usr/bin/python3
"""test_protocol_node.py - server_protocol_python.

A rendezvous node written from schema/PROTOCOL.md alone (no project code):
python3-websockets for the transport, python3-nacl for Ed25519, and its own
RFC 8785 (JCS) canonicaliser below. It starts a real rendezvousd on an
ephemeral port with a temporary database, starts the C-side node
(server_peer_helper, built on tests/support and the C codec), then:

  1. authenticates (challenge -> signed hello -> welcome, fields checked);
  2. sends a signed offer to the C node, with unknown fields whose keys and
     strings exercise JCS (non-ASCII, astral-plane key, escapes, numbers);
  3. receives the C node's answer and verifies it: sender, recipient,
     sessionID, freshness window, Ed25519 signature over its own JCS;
  4. sends a signed iceCandidate of the same session;
  5. checks that the C node verified the offer and the iceCandidate with
     the C codec, and that the bytes it sent are the bytes received here.

Usage: test_protocol_node.py --server PATH/rendezvousd --peer PATH/server_peer_helper
Exit status 0 on success; on failure the reason and the server log.
"""
import argparse
import asyncio
import json
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

try:
    import websockets
    import nacl.signing
    import nacl.exceptions
except ImportError as e:  # the test needs them; say so plainly
    print("FAIL: python3-websockets and python3-nacl are required (%s)" % e)
    sys.exit(1)

TIMEOUT = 10.0
DOMAIN = b"rendezvous.v1/"
FRESH_PAST_MS = 120000
FRESH_FUTURE_MS = 30000


# ---- RFC 8785 JSON Canonicalization Scheme --------------------------------

def _es_number(x):
    """ECMAScript Number.prototype.toString for a finite double."""
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError("NaN/Infinity are not JSON")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    r = repr(abs(x))  # shortest round-trip digits
    mant, _, exp = r.partition("e")
    exp = int(exp) if exp else 0
    ip, _, fp = mant.partition(".")
    digits = ip + fp
    point = len(ip) + exp  # value = 0.digits * 10^point after stripping
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    k, n = len(digits), point
    if k <= n <= 21:
        s = digits + "0" * (n - k)
    elif 0 < n <= 21:
        s = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        s = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        es = ("+" if e >= 0 else "-") + str(abs(e))
        s = (digits if k == 1 else digits[0] + "." + digits[1:]) + "e" + es
    return sign + s


def _jcs_string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\r":
            out.append("\\r")
        elif o < 0x20:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def jcs(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v) if abs(v) < 2 ** 53 else _es_number(float(v))
    if isinstance(v, float):
        return _es_number(v)
    if isinstance(v, str):
        return _jcs_string(v)
    if isinstance(v, list):
        return "[" + ",".join(jcs(x) for x in v) + "]"
    if isinstance(v, dict):
        # Members sorted by the UTF-16 code units of their names.
        items = sorted(v.items(), key=lambda kv: kv[0].encode("utf-16-be"))
        return "{" + ",".join(_jcs_string(k) + ":" + jcs(x) for k, x in items) + "}"
    raise TypeError(type(v))


def _self_test_jcs():
    assert jcs({"b": 1, "a": [True, None, "x"]}) == '{"a":[true,null,"x"],"b":1}'
    for x, s in [(1e21, "1e+21"), (1e20, "100000000000000000000"), (1e-7, "1e-7"),
                 (0.000001, "0.000001"), (2.5, "2.5"), (-0.0, "0"), (123.456, "123.456"),
                 (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
                 (0.1 + 0.2, "0.30000000000000004"), (-1.5e-9, "-1.5e-9")]:
        assert _es_number(x) == s, (x, _es_number(x), s)
    # UTF-16 order: U+1F600 (D83D DE00) sorts before U+FB00.
    assert jcs({"\ufb00": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ufb00":1}'
    assert jcs("\u0001\u2028\"\\") == '"\\u0001\u2028\\"\\\\"'


# ---- the node -----------------------------------------------------------------

def now_ms():
    return int(time.time() * 1000)


def signing_input(msg_type, body):
    unsigned = {k: v for k, v in body.items() if k != "signature"}
    return DOMAIN + msg_type.encode() + b"\x00" + jcs(unsigned).encode("utf-8")


def sign(key, msg_type, body):
    body["signature"] = key.sign(signing_input(msg_type, body)).signature.hex()
    return body


def verify(msg_type, body, node_id):
    vk = nacl.signing.VerifyKey(bytes.fromhex(node_id))
    vk.verify(signing_input(msg_type, body), bytes.fromhex(body["signature"]))


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


HEX64 = re.compile(r"^[0-9a-f]{64}$")


def one_message(text):
    msg = json.loads(text)
    check(isinstance(msg, dict) and len(msg) == 1, "not a one-member envelope: %r" % text)
    (mtype, body), = msg.items()
    check(isinstance(body, dict), "body is not an object: %r" % text)
    return mtype, body


async def recv_type(ws, want):
    text = await asyncio.wait_for(ws.recv(), TIMEOUT)
    check(isinstance(text, str), "binary frame where %s was expected" % want)
    mtype, body = one_message(text)
    check(mtype == want, "expected %s, got %s" % (want, text))
    return body, text


async def run_node(port, peer_id, helper_lines):
    key = nacl.signing.SigningKey.generate()
    my_id = key.verify_key.encode().hex()
    uri = "ws://127.0.0.1:%d/v1" % port
    async with websockets.connect(uri, subprotocols=["rendezvous.v1"], compression=None,
                                  open_timeout=TIMEOUT, max_size=1 << 20) as ws:
        check(ws.subprotocol == "rendezvous.v1", "subprotocol %r" % ws.subprotocol)

        # 1. challenge / hello / welcome (PROTOCOL.md 6)
        ch, _ = await recv_type(ws, "challenge")
        check(HEX64.match(ch.get("nonce", "")), "challenge.nonce %r" % ch.get("nonce"))
        check(ch.get("server") == "py-rendezvous", "challenge.server %r" % ch.get("server"))
        check(ch.get("version") == 1, "challenge.version %r" % ch.get("version"))
        check(abs(ch.get("serverTime", 0) - now_ms()) < 60000, "challenge.serverTime")
        hello = {"nodeID": my_id, "nonce": ch["nonce"], "server": ch["server"],
                 "timestamp": now_ms(), "natType": "fullCone", "software": "pynode/1"}
        await ws.send(json.dumps({"hello": sign(key, "hello", hello)}))
        wel, _ = await recv_type(ws, "welcome")
        check(wel.get("nodeID") == my_id, "welcome.nodeID")
        check(wel.get("observedIP") == "127.0.0.1", "welcome.observedIP %r" % wel.get("observedIP"))
        check(isinstance(wel.get("observedPort"), int) and wel["observedPort"] > 0,
              "welcome.observedPort")
        limits = wel.get("limits", {})
        for k in ("maxMessageBytes", "messagesPerSecond", "messageBurst", "offlineTtlMs",
                  "offlineQueueMax", "maxWatches", "pingIntervalMs", "idleTimeoutMs"):
            check(isinstance(limits.get(k), int) and limits[k] >= 0, "welcome.limits.%s" % k)

        # 2. offer with unknown fields that exercise the canonicaliser
        sid = str(uuid.uuid4())
        offer = {
            "fromNodeID": my_id, "toNodeID": peer_id, "sessionID": sid,
            "timestamp": now_ms(),
            "connectionInfo": {"publicIP": "203.0.113.5", "publicPort": 40000,
                               "localIP": "192.168.7.2", "localPort": 51820,
                               "natType": "fullCone",
                               "wgPublicKey": secrets.token_hex(32)},
            "e2eKey": secrets.token_hex(32),
            "x-python": {"\ufb00": "ligature", "\U0001f600": "astral key",
                         "z\u00e9": ["caf\u00e9", "tab\there", "quote\"", 2.5, 1e21, 100,
                                     -7, True, None, {}],
                         "Z": 0.000001},
        }
        sign(key, "offer", offer)
        # Sent with spaces, non-ASCII kept raw: the server must not care.
        await ws.send(json.dumps({"offer": offer}, ensure_ascii=False, indent=1))

        # 3. the C node's answer
        ans, ans_text = await recv_type(ws, "answer")
        check(ans.get("fromNodeID") == peer_id, "answer.fromNodeID")
        check(ans.get("toNodeID") == my_id, "answer.toNodeID")
        check(ans.get("sessionID") == sid, "answer.sessionID")
        ts = ans.get("timestamp")
        check(isinstance(ts, int) and now_ms() - FRESH_PAST_MS <= ts <= now_ms() + FRESH_FUTURE_MS,
              "answer.timestamp not fresh: %r" % ts)
        try:
            verify("answer", ans, peer_id)
        except nacl.exceptions.BadSignatureError:
            raise Failure("answer signature does not verify with this JCS: %s" % ans_text)
        # The signature is bound to the type: as an offer it must not verify.
        try:
            verify("offer", ans, peer_id)
            raise Failure("answer signature verifies as an offer (no domain tag?)")
        except nacl.exceptions.BadSignatureError:
            pass

        # The bytes the C node sent are the bytes received (server forwards unchanged).
        line = helper_lines.get(timeout=TIMEOUT)
        while line.startswith(("OFFER ", "VERIFIED ")):
            if line.startswith("VERIFIED "):
                check(line.strip() == "VERIFIED offer", "helper: %s" % line)
            line = helper_lines.get(timeout=TIMEOUT)
        check(line.startswith("ANSWER "), "helper said %r" % line)
        check(json.loads(line[len("ANSWER "):]) == ans_text, "answer bytes changed in transit")

        # 4. iceCandidate of the same session
        ice = {"fromNodeID": my_id, "toNodeID": peer_id, "sessionID": sid,
               "timestamp": now_ms(),
               "candidate": {"ip": "2001:db8::7", "port": 51820, "type": "host",
                             "priority": 2130706431, "foundation": "py1"},
               "x-trickle": {"n": [1, 2, 3]}}
        sign(key, "iceCandidate", ice)
        await ws.send(json.dumps({"iceCandidate": ice}))

        # 5. the C node verified both with the C codec
        seen = []
        deadline = time.time() + TIMEOUT
        while "DONE" not in seen and time.time() < deadline:
            line = helper_lines.get(timeout=max(0.1, deadline - time.time())).strip()
            if line.startswith("FAIL"):
                raise Failure("C node: " + line)
            seen.append(line.split(" ", 1)[0] if not line.startswith("VERIFIED") else line)
        check("VERIFIED iceCandidate" in seen, "C node did not verify the iceCandidate: %r" % seen)
        check("DONE" in seen, "C node did not finish: %r" % seen)
        return True


def start_server(path, tmp):
    log = open(os.path.join(tmp, "server.log"), "wb")
    proc = subprocess.Popen(
        [path, "--listen", "127.0.0.1", "--port", "0", "--db", os.path.join(tmp, "r.db"),
         "--name", "py-rendezvous", "--stun-port", "0"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("RENDEZVOUS_")})
    deadline = time.time() + 10
    pat = re.compile(r"listening on ws://.*:(\d+)/v1")
    while time.time() < deadline:
        with open(os.path.join(tmp, "server.log"), "r", errors="replace") as f:
            m = pat.search(f.read())
        if m:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    raise Failure("rendezvousd did not become ready")


def reader(stream, q):
    for raw in iter(stream.readline, b""):
        q.put(raw.decode("utf-8", "replace"))
    q.put("EOF\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--peer", required=True)
    args = ap.parse_args()
    _self_test_jcs()
    tmp = tempfile.mkdtemp(prefix="rdv-pytest-")
    server = helper = None
    ok = False
    try:
        server, port = start_server(args.server, tmp)
        helper = subprocess.Popen([args.peer, str(port), "c-node", "20000"],
                                  stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        lines = queue.Queue()
        threading.Thread(target=reader, args=(helper.stdout, lines), daemon=True).start()
        first = lines.get(timeout=TIMEOUT)
        check(first.startswith("READY "), "C node: %r" % first)
        peer_id = first.split()[1]
        check(HEX64.match(peer_id), "C node id %r" % peer_id)
        asyncio.run(run_node(port, peer_id, lines))
        rc = helper.wait(timeout=TIMEOUT)
        check(rc == 0, "C node exit status %d" % rc)
        server.send_signal(signal.SIGTERM)
        rc = server.wait(timeout=TIMEOUT)
        check(rc == 0, "rendezvousd exit status %d after SIGTERM" % rc)
        ok = True
        print("PASS: python node authenticated and exchanged offer/answer/iceCandidate "
              "with the C node")
    except (Failure, AssertionError, queue.Empty, asyncio.TimeoutError,
            websockets.exceptions.WebSocketException, OSError) as e:
        print("FAIL: %s: %s" % (type(e).__name__, e))
    finally:
        for p in (helper, server):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        if not ok:
            try:
                with open(os.path.join(tmp, "server.log"), errors="replace") as f:
                    print("----- rendezvousd log -----\n" + f.read()[-16000:])
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
