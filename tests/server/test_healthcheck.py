#!/usr/bin/python3
"""test_healthcheck.py - server_healthcheck: `rendezvousd --healthcheck`
(rendezvous/healthcheck.h) asks /healthz where the configured server
listens and exits 0 / 1:

- a server on a non-default port from a --config file, from
  RENDEZVOUS_PORT, and from its flags read through --healthcheck=PID
  (what the container's HEALTHCHECK uses: `docker run IMAGE --port N`);
- --listen 0.0.0.0 is probed on 127.0.0.1; TLS (--tls-cert) over https;
- 1 when nothing listens there (even with another server on 8080's
  neighbour port), when /healthz answers 503 (--redis with no Redis), for
  --port 0, and for a PID that is not rendezvousd; 2 for a bad PID.

Usage: test_healthcheck.py --server PATH
"""
import argparse, os, re, shutil, signal, socket, subprocess, sys, tempfile, time

WAIT_S = 10


def fail(msg, log=None):
    print("FAIL: " + msg)
    if log and os.path.exists(log):
        print("--- server log ---\n" + open(log).read())
    sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENDEZVOUS_")}
    env.update(extra or {})
    return env


class Server:
    def __init__(self, exe, tmp, args, env=None, ready=r"listening on wss?://"):
        self.log = os.path.join(tmp, "server-%d.log" % len(os.listdir(tmp)))
        out = open(self.log, "w")
        self.p = subprocess.Popen([exe, "--stun", "off", "--db", os.path.join(tmp, "r.db")]
                                  + args, stdout=out, stderr=out, env=clean_env(env), cwd=tmp)
        deadline = time.monotonic() + WAIT_S
        while not re.search(ready, open(self.log).read()):
            if self.p.poll() is not None or time.monotonic() > deadline:
                self.stop()
                fail("server %s did not start" % args, self.log)
            time.sleep(0.05)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if re.search(r"AddressSanitizer|LeakSanitizer|runtime error", open(self.log).read()):
            fail("sanitizer report", self.log)


def check(exe, args, want_rc, want_re, env=None, log=None, cwd=None):
    r = subprocess.run([exe] + args, capture_output=True, text=True, env=clean_env(env),
                       timeout=30, cwd=cwd)
    out = r.stdout + r.stderr
    if r.returncode != want_rc or not re.search(want_re, out):
        fail("rendezvousd %s (env %s): exit %d, output %r; expected exit %d and /%s/"
             % (" ".join(args), env, r.returncode, out, want_rc, want_re), log)
    if re.search(r"AddressSanitizer|LeakSanitizer|runtime error", out):
        fail("sanitizer report in --healthcheck %s: %s" % (args, out))
    print("ok: rendezvousd %s -> %d (%s)" % (" ".join(args), want_rc, out.strip()[:90]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    exe = ap.parse_args().server
    tmp = tempfile.mkdtemp(prefix="rdv-healthcheck-")
    servers = []
    try:
        # a non-default port from a config file, the check reading the same file
        port = free_port()
        conf = os.path.join(tmp, "rendezvousd.conf")
        with open(conf, "w") as f:
            f.write("listen = 127.0.0.1\nport = %d\n" % port)
        s = Server(exe, tmp, ["--config", conf])
        servers.append(s)
        url = r"^healthy: http://127\.0\.0\.1:%d/healthz$" % port
        check(exe, ["--healthcheck", "--config", conf], 0, url, log=s.log)
        check(exe, ["--healthcheck"], 0, url, env={"RENDEZVOUS_CONFIG": conf}, log=s.log)
        check(exe, ["--healthcheck", "--port", str(port)], 0, url, log=s.log)
        check(exe, ["--healthcheck"], 0, url, env={"RENDEZVOUS_PORT": str(port)}, log=s.log)
        # --healthcheck=PID: that server's own configuration (its relative
        # --config is read from its working directory)
        check(exe, ["--healthcheck=%d" % s.p.pid], 0, url, log=s.log, cwd="/")
        s.stop()
        # nothing there any more: unhealthy, by PID too
        check(exe, ["--healthcheck", "--config", conf], 1,
              r"unhealthy: http://127\.0\.0\.1:%d/healthz: " % port)
        check(exe, ["--healthcheck=%d" % s.p.pid], 1, r"cannot read /proc")

        # flags of a running server (the container case: docker run IMAGE --port N),
        # with --listen 0.0.0.0 probed on the loopback; a server on
        # another port does not answer for it
        port2 = free_port()
        other = Server(exe, tmp, ["--listen", "127.0.0.1", "--port", str(free_port())])
        servers.append(other)
        s2 = Server(exe, tmp, ["--listen", "0.0.0.0", "--port", str(port2)],
                    env={"RENDEZVOUS_PORT": "1"})
        servers.append(s2)
        url2 = r"^healthy: http://127\.0\.0\.1:%d/healthz$" % port2
        check(exe, ["--healthcheck=%d" % s2.p.pid], 0, url2, log=s2.log)
        s2.stop()
        check(exe, ["--healthcheck", "--listen", "0.0.0.0", "--port", str(port2)], 1,
              r"unhealthy: http://127\.0\.0\.1:%d/healthz" % port2)
        other.stop()

        # /healthz 503: the store cannot answer (--redis where no Redis listens)
        port3 = free_port()
        sock = os.path.join(tmp, "no-redis.sock")
        s3 = Server(exe, tmp, ["--port", str(port3), "--redis", "unix://" + sock])
        servers.append(s3)
        check(exe, ["--healthcheck", "--port", str(port3)], 1, r"HTTP 503", log=s3.log)
        s3.stop()

        # TLS: https, the certificate not verified (a self-signed one here)
        if shutil.which("openssl"):
            cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", key, "-out", cert, "-days", "2", "-subj",
                            "/CN=rendezvous.example"], check=True, capture_output=True)
            port4 = free_port()
            tls = ["--port", str(port4), "--tls-cert", cert, "--tls-key", key]
            s4 = Server(exe, tmp, tls)
            servers.append(s4)
            check(exe, ["--healthcheck"] + tls, 0,
                  r"^healthy: https://127\.0\.0\.1:%d/healthz$" % port4, log=s4.log)
            s4.stop()
        else:
            fail("openssl missing (scripts/bootstrap installs it)")

        # what cannot be probed
        check(exe, ["--healthcheck", "--port", "0"], 1, r"--port 0")
        check(exe, ["--healthcheck=%d" % os.getpid()], 1, r"not rendezvousd")
        check(exe, ["--healthcheck=x1"], 2, r"PID must be a process ID")
        check(exe, ["--healthcheck", "--port", "nope"], 2, r"--port: 'nope'")
    finally:
        for s in servers:
            if s.p.poll() is None:
                s.p.kill()
                s.p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
