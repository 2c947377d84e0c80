#!/usr/bin/python3
"""test_notify.py - server_notify: readiness for systemd's Type=notify
(rendezvous/notify.h), read from a NOTIFY_SOCKET this test binds the way
systemd does (an AF_UNIX datagram socket):

- READY=1, with STATUS=listening on ws://ADDR:PORT/v1 (the real port), is
  sent once the ready line is logged;
- SIGHUP: RELOADING=1 (with MONOTONIC_USEC) then READY=1 with
  STATUS=reload 1: ok; a broken --config file: READY=1 with STATUS=reload
  2: FAILED ..., and the server goes on;
- SIGTERM: STOPPING=1 and exit 0;
- a NOTIFY_SOCKET nobody listens on is logged and the server serves anyway.

Usage: test_notify.py --server PATH
"""
import argparse, os, re, signal, socket, subprocess, sys, tempfile, time
import urllib.request

WAIT_S = 10


def fail(msg, log=None):
    print("FAIL: " + msg)
    if log:
        print("--- server log ---\n" + open(log).read())
    sys.exit(1)


def start(server, tmp, env_extra, conf):
    log = os.path.join(tmp, "server.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDEZVOUS_")}
    env.update(env_extra)
    out = open(log, "w")
    p = subprocess.Popen([server, "--listen", "127.0.0.1", "--port", "0", "--stun", "off",
                          "--db", os.path.join(tmp, "r.db"), "--config", conf],
                         stdout=out, stderr=out, env=env)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        m = re.search(r"listening on ws://127.0.0.1:(\d+)/v1", open(log).read())
        if m:
            return p, int(m.group(1)), log
        if p.poll() is not None:
            break
        time.sleep(0.05)
    p.kill()
    fail("server did not start", log)


def recv(sock, log):
    """The next notification as a dict of its KEY=VALUE lines."""
    sock.settimeout(WAIT_S)
    try:
        data = sock.recv(4096).decode()
    except socket.timeout:
        fail("no notification within %d s" % WAIT_S, log)
    return dict(line.split("=", 1) for line in data.split("\n") if "=" in line)


def expect(sock, log, key, status_re):
    """Skips STATUS-only updates until a message with key=1; checks its STATUS."""
    while True:
        msg = recv(sock, log)
        if msg.get(key) == "1":
            break
        if set(msg) != {"STATUS"}:
            fail("expected %s=1, got %r" % (key, msg), log)
    if not re.search(status_re, msg.get("STATUS", "")):
        fail("%s=1 with STATUS=%r, expected /%s/" % (key, msg.get("STATUS"), status_re), log)
    return msg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rdv-notify-")
    conf = os.path.join(tmp, "rendezvousd.conf")
    with open(conf, "w") as f:
        f.write("rate = 5\n")
    path = os.path.join(tmp, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)

    p, port, log = start(a.server, tmp, {"NOTIFY_SOCKET": path}, conf)
    try:
        expect(sock, log, "READY", r"^listening on ws://127\.0\.0\.1:%d/v1$" % port)
        print("ok: READY=1 after the ready line, STATUS names the port")

        p.send_signal(signal.SIGHUP)
        m = expect(sock, log, "RELOADING", r"reloading")
        if not m.get("MONOTONIC_USEC", "").isdigit():
            fail("RELOADING=1 without MONOTONIC_USEC: %r" % m, log)
        expect(sock, log, "READY", r"^reload 1: ok$")
        print("ok: SIGHUP -> RELOADING=1, READY=1 (reload 1: ok)")

        with open(conf, "w") as f:
            f.write("rate = many\n")
        p.send_signal(signal.SIGHUP)
        expect(sock, log, "RELOADING", r"reloading")
        expect(sock, log, "READY", r"^reload 2: FAILED")
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=WAIT_S) as r:
            if r.status != 200:
                fail("/healthz %d after a failed reload" % r.status, log)
        print("ok: a broken file -> READY=1 (reload 2: FAILED ...), still serving")

        p.send_signal(signal.SIGTERM)
        expect(sock, log, "STOPPING", r"^stopping")
        rc = p.wait(timeout=WAIT_S)
        if rc != 0:
            fail("exit status %d after SIGTERM" % rc, log)
        if re.search(r"AddressSanitizer|LeakSanitizer|runtime error", open(log).read()):
            fail("sanitizer report", log)
        print("ok: SIGTERM -> STOPPING=1, exit 0")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()

    # a socket nobody listens on: logged, and the server serves anyway
    os.unlink(path)
    with open(conf, "w") as f:
        f.write("rate = 5\n")
    p, port, log = start(a.server, tmp, {"NOTIFY_SOCKET": path}, conf)
    try:
        deadline = time.monotonic() + WAIT_S
        while "sd_notify (NOTIFY_SOCKET)" not in open(log).read():
            if time.monotonic() > deadline:
                fail("an unreachable NOTIFY_SOCKET was not logged", log)
            time.sleep(0.05)
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=WAIT_S) as r:
            if r.status != 200:
                fail("/healthz %d with an unreachable NOTIFY_SOCKET" % r.status, log)
        p.send_signal(signal.SIGTERM)
        if p.wait(timeout=WAIT_S) != 0:
            fail("exit status %d" % p.returncode, log)
        if re.search(r"AddressSanitizer|LeakSanitizer|runtime error", open(log).read()):
            fail("sanitizer report", log)
        print("ok: an unreachable NOTIFY_SOCKET is logged; the server serves")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    print("PASS")


if __name__ == "__main__":
    main()
