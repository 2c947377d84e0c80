#!/usr/bin/env python3
"""interop_stun.py - runs a Debian STUN client against stun_responder
(rendezvousd's STUN responder alone) on loopback with ephemeral ports and
checks that the mapped address the client prints is the loopback address
and the client's own port (as the server saw it in recvmsg, or as the
test chose with -p).

  interop_stun.py --server PATH --client CLIENT --family 4|6 [--rendezvousd]

With --rendezvousd, PATH is the whole daemon: it runs with --listen ADDR
--port 0 --stun-port 0 --stun-alt-port P (P a free port) [--stun-alt-address
127.0.0.2] --log-level debug, the STUN port comes from its "stun on
udp://ADDR:PORT" line and the datagrams it saw from its "stun rx ..." debug
lines; it must exit 0 on SIGTERM with no sanitizer report.

CLIENT:
  turnutils           coturn's turnutils_stunclient, one server address.
                      It sees OTHER-ADDRESS and goes on with RFC 5780
                      requests (RESPONSE-PORT + CHANGE-REQUEST, then
                      PADDING); with a single IP those must come back as
                      420 (to the RESPONSE-PORT, or the client would hang).
  turnutils-rfc5780   Same with a second address (127.0.0.2, local on
                      Linux loopback): change IP + port really works.
  stunclient          stun-client 0.97 (RFC 3489, no magic cookie), test 1.
  stunclient-nattype  stun-client's full RFC 3489 NAT type run against the
                      two-address server: must report "Open".

Exit 0 pass, 1 fail, 77 skip (client not installed, no IPv6, or
127.0.0.2 not usable). stun-client 0.97 is IPv4-only: no IPv6 case.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

CLIENT_TIMEOUT_S = 20
SERVER_TIMEOUT_S = 40
SKIP = 77
ALT_V4 = "127.0.0.2"


def log(*a):
    print(*a, flush=True)


RDV = False  # --rendezvousd: the server is rendezvousd itself
RDV_READY_TIMEOUT_S = 10


def free_udp_port(addr):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def start_rendezvousd(path, addr, alt_addr=None):
    """Starts rendezvousd; returns (proc, (stun_port, alt_port)) or (None, log)."""
    tmp = tempfile.mkdtemp(prefix="rdv-stun-interop-")
    logpath = os.path.join(tmp, "server.log")
    alt_port = free_udp_port(addr)
    cmd = [path, "--listen", addr, "--port", "0", "--db", os.path.join(tmp, "r.db"),
           "--stun-port", "0", "--stun-alt-port", str(alt_port), "--log-level", "debug"]
    if alt_addr:
        cmd += ["--stun-alt-address", alt_addr]
    log("$", " ".join(cmd))
    with open(logpath, "wb") as lf:
        p = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env={k: v for k, v in os.environ.items()
                                  if not k.startswith("RENDEZVOUS_")})
    p.rdv_tmp = tmp
    pat = re.compile(r"stun on udp://\[?[0-9a-fA-F.:]+\]?:(\d+)")
    deadline = time.time() + RDV_READY_TIMEOUT_S
    text = ""
    while time.time() < deadline:
        with open(logpath, "r", errors="replace") as f:
            text = f.read()
        m = pat.search(text)
        if m:
            return p, (int(m.group(1)), alt_port)
        if p.poll() is not None:
            break
        time.sleep(0.02)
    p.kill()
    p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    return None, text


def stop_rendezvousd(p):
    """SIGTERM; returns the "stun rx" lines as stop_server does; fails on a
    bad exit or a sanitizer report."""
    p.terminate()
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    with open(os.path.join(p.rdv_tmp, "server.log"), "r", errors="replace") as f:
        text = f.read()
    shutil.rmtree(p.rdv_tmp, ignore_errors=True)
    rx = []
    for m in re.finditer(r"stun rx (\S+) (\d+) in=(\d) out=(\d) reply=(\d+)", text):
        rx.append((m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)),
                   int(m.group(5))))
    log("server saw:", rx)
    clean = not any(w in text for w in ("AddressSanitizer", "LeakSanitizer", "runtime error:"))
    if p.returncode != 0 or not clean:
        sys.stderr.write(text)
    check(p.returncode == 0, "rendezvousd exited 0 after SIGTERM (status %s)" % p.returncode)
    check(clean, "rendezvousd log has no sanitizer report")
    return rx, p.returncode


def start_server(path, addr, alt_addr=None):
    if RDV:
        return start_rendezvousd(path, addr, alt_addr)
    cmd = [path, "--addr", addr, "--alt-ephemeral", "--timeout", str(SERVER_TIMEOUT_S)]
    if alt_addr:
        cmd += ["--alt-addr", alt_addr]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    if len(line) != 4 or line[0] != "listening":
        p.kill()
        err = p.stderr.read()
        p.wait()
        return None, err
    return p, (int(line[2]), int(line[3]))


def stop_server(p):
    """Stops the server, returns its "rx" lines as (ip, port, in, out, reply)."""
    if RDV:
        return stop_rendezvousd(p)
    p.terminate()
    try:
        out, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    sys.stderr.write(err)
    rx = []
    for line in out.splitlines():
        m = re.match(r"rx (\S+) (\d+) in=(\d) out=(\d) reply=(\d+)", line)
        if m:
            rx.append((m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)),
                       int(m.group(5))))
    log("server saw:", rx)
    return rx, p.returncode


def run_client(cmd):
    log("$", " ".join(cmd))
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=CLIENT_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        log(out)
        log("FAIL: client timed out after", CLIENT_TIMEOUT_S, "s")
        return None, out
    log(r.stdout)
    return r.returncode, r.stdout


def free_port_pair():
    """A port p with p and p+1 free on 127.0.0.1 (stun-client binds both)."""
    for _ in range(50):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if p < 65535:
                s2.bind(("127.0.0.1", p + 1))
                return p
        except OSError:
            pass
        finally:
            s.close()
            s2.close()
    raise RuntimeError("no free port pair")


def have_ipv6_loopback():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def check(cond, what):
    if not cond:
        log("FAIL:", what)
        sys.exit(1)
    log("ok:", what)


def reflexive(out):
    """(ip, port) pairs of coturn's "UDP reflexive addr" lines."""
    res = []
    for m in re.finditer(r"UDP reflexive addr:?\s*(?::\s+)?(\S+):(\d+)", out):
        res.append((m.group(1).strip("[]"), int(m.group(2))))
    return res


def case_turnutils(server, family, alt):
    exe = shutil.which("turnutils_stunclient")
    if not exe:
        log("SKIP: turnutils_stunclient not installed (apt install coturn)")
        return SKIP
    addr = "127.0.0.1" if family == 4 else "::1"
    if family == 6 and not have_ipv6_loopback():
        log("SKIP: no IPv6 loopback")
        return SKIP
    p, ports = start_server(server, addr, ALT_V4 if alt else None)
    if p is None:
        if alt:
            log("SKIP: cannot bind", ALT_V4, ports)
            return SKIP
        log("FAIL: server did not start:", ports)
        return 1
    port, alt_port = ports
    rc, out = run_client([exe, "-p", str(port), addr])
    rx, _ = stop_server(p)
    check(rc == 0, "turnutils_stunclient finished (exit %s)" % rc)
    check(len(rx) >= 1, "server received the Binding request")
    src_ip, src_port = rx[0][0], rx[0][1]
    refl = reflexive(out)
    check(len(refl) >= 1, "client printed a reflexive address")
    check(refl[0] == (addr, src_port),
          "mapped address %s:%d == loopback and client port %s:%d" %
          (refl[0][0], refl[0][1], addr, src_port))
    check(src_ip == addr, "request came from %s" % addr)
    check("RFC 5780 response 1" in out, "client saw OTHER-ADDRESS (RFC 5780 server)")
    check(("Other addr: : %s:%d" % (ALT_V4 if alt else addr, alt_port)) in out,
          "OTHER-ADDRESS is the alternate socket")
    if alt:
        # Second request: RESPONSE-PORT + change IP and port; the answer
        # comes from 127.0.0.2:alt_port to the new port.
        check("RFC 5780 response 2" in out, "change IP+port answered (RESPONSE-PORT honoured)")
        check(("Response origin: : %s:%d" % (ALT_V4, alt_port)) in out,
              "RESPONSE-ORIGIN of the changed answer is %s:%d" % (ALT_V4, alt_port))
        check(len(refl) >= 2 and refl[1] == (addr, src_port),
              "changed answer maps to the same client address")
        check(any(r[3] == 3 for r in rx), "server sent it from the alt-address/alt-port socket")
    else:
        check("error 420 (Unknown Attribute: cannot change" in out,
              "change IP on a one-address server is 420 (sent to RESPONSE-PORT)")
    check("error 420 (Unknown Attribute)" in out, "PADDING (not implemented) is 420")
    return 0


def case_stunclient(server, nattype):
    exe = shutil.which("stun")
    if not exe:
        log("SKIP: stun (stun-client) not installed (apt install stun-client)")
        return SKIP
    p, ports = start_server(server, "127.0.0.1", ALT_V4 if nattype else None)
    if p is None:
        if nattype:
            log("SKIP: cannot bind", ALT_V4, ports)
            return SKIP
        log("FAIL: server did not start:", ports)
        return 1
    port, alt_port = ports
    src = free_port_pair()
    if nattype:
        rc, out = run_client([exe, "127.0.0.1:%d" % port, "-p", str(src), "-v"])
    else:
        rc, out = run_client([exe, "127.0.0.1:%d" % port, "1", "-p", str(src), "-v"])
    rx, _ = stop_server(p)
    check(rc is not None, "stun finished")
    check(any(r[0] == "127.0.0.1" and r[1] == src for r in rx),
          "server received the request from 127.0.0.1:%d" % src)
    mapped = re.findall(r"MappedAddress = (\S+):(\d+)", out)
    check(len(mapped) >= 1, "client printed MappedAddress")
    check(mapped[0] == ("127.0.0.1", str(src)),
          "mapped address %s:%s == 127.0.0.1:%d" % (mapped[0][0], mapped[0][1], src))
    changed = re.findall(r"ChangedAddress = (\S+):(\d+)", out)
    want_changed = (ALT_V4 if nattype else "127.0.0.1", str(alt_port))
    check(len(changed) >= 1 and changed[0] == want_changed,
          "CHANGED-ADDRESS is the alternate socket %s:%s" % want_changed)
    if nattype:
        check("Primary: Open" in out, "RFC 3489 classification over loopback is Open")
    else:
        check(rc == 0, "test 1 exit status 0")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--client", required=True,
                    choices=["turnutils", "turnutils-rfc5780", "stunclient",
                             "stunclient-nattype"])
    ap.add_argument("--family", type=int, choices=[4, 6], default=4)
    ap.add_argument("--rendezvousd", action="store_true",
                    help="--server is rendezvousd (its STUN service), not stun_responder")
    a = ap.parse_args()
    global RDV
    RDV = a.rendezvousd
    if not os.access(a.server, os.X_OK):
        log("FAIL: no server binary", a.server)
        return 1
    if a.client.startswith("turnutils"):
        return case_turnutils(a.server, a.family, a.client == "turnutils-rfc5780")
    if a.family != 4:
        log("SKIP: stun-client 0.97 is IPv4-only")
        return SKIP
    return case_stunclient(a.server, a.client == "stunclient-nattype")


if __name__ == "__main__":
    sys.exit(main())
