#!/usr/bin/env python3
"""check_boxes.py - ctest nat_lab_boxes: checks that every NAT box of the
lab (natlab.py) behaves as the type it emulates, with third-party STUN
clients against rendezvousd's STUN service (RFC 3489/5780 with the
alternate address 203.0.113.2 and port 3479). Needs no librendezvous.

  check_boxes.py --rendezvousd PATH [--types T,T,...]

Per NAT type, each check on a fresh site (new box = fresh conntrack and
nft sets):
  1. stun-client (`stun 203.0.113.1 -v`, RFC 3489 classification):
       fullCone        "Independent Mapping, Independent Filter"
       restrictedCone  "Independent Mapping, Address Dependent Filter"
       portRestricted  "Independent Mapping, Port Dependent Filter"
       symmetric       "Dependent Mapping"
       none            "Open"
  2. coturn's turnutils_natdiscovery -m -f (RFC 5780 behaviour discovery):
     mapping Endpoint Independent for the cones, Address and Port
     Dependent for symmetric; filtering Endpoint Independent / Address
     Dependent / Address and Port Dependent / Address and Port Dependent.
     (It cannot tell "no NAT": for none it must say EIM + EIF.)
  3. unsolicited inbound: the node listens on a port it never sent from;
     a datagram from the server's address to that port on the site's
     public address must not reach the node behind any box and no ICMP
     error may come back (for none it must arrive: the probe works).
A missing client is reported and its checks skipped; when both are
missing the test skips (exit 77). Not root / no namespaces / no nft: exit
77 with "SKIP: ...".

Exit 0 all passed, 1 a check failed, 77 skipped.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import natlab  # noqa: E402
from natlab import log  # noqa: E402

CLIENT_TIMEOUT_S = 40
PROBE_MS = 700
PROBE_PORT = 40000
HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = os.path.join(HERE, "udp_probe.py")

STUN_EXPECT = {
    "fullCone": "Independent Mapping, Independent Filter",
    "restrictedCone": "Independent Mapping, Address Dependent Filter",
    "portRestricted": "Independent Mapping, Port Dependent Filter",
    "symmetric": "Dependent Mapping",
    "none": "Open",
}
NATDISC_EXPECT = {   # (mapping, filtering) as turnutils_natdiscovery words them
    "fullCone": ("Endpoint Independent", "Endpoint Independent"),
    "restrictedCone": ("Endpoint Independent", "Address Dependent"),
    "portRestricted": ("Endpoint Independent", "Address and Port Dependent"),
    "symmetric": ("Address and Port Dependent", "Address and Port Dependent"),
    "none": ("Endpoint Independent", "Endpoint Independent"),
}


ATTEMPTS = 3  # per classification, each on a fresh site (see check_stun)


class Checks:
    def __init__(self):
        self.results = []   # (nat_type, check, ok, detail)

    def add(self, nat, what, ok, detail):
        self.results.append((nat, what, ok, detail))
        log("%s: %s %s: %s" % ("ok" if ok else "FAIL", nat, what, detail))

    def failed(self):
        return [r for r in self.results if not r[2]]


def run_in(lab, ns, argv, timeout=CLIENT_TIMEOUT_S):
    """Runs argv in ns; returns (exit status or None on timeout, output)."""
    p = lab.popen(ns, argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                  stdin=subprocess.DEVNULL, text=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        return None, out
    return p.returncode, out


def check_stun(lab, chk, nat):
    # Both clients classify by timeouts (a CHANGE-REQUEST answer that does
    # not come within their wait reads as filtering); under a loaded CI
    # machine one answer can be late, so a mismatch is retried on a fresh
    # site, at most ATTEMPTS times. A box that behaves wrongly fails all.
    for attempt in range(1, ATTEMPTS + 1):
        site = lab.add_site(nat)
        try:
            rc, out = run_in(lab, site.node_ns, ["stun", natlab.SERVER_IP, "-v"])
        finally:
            lab.remove_site(site)
        m = re.search(r"^Primary: (.*?)\s*$", out, re.M)
        got = m.group(1) if m else "(no Primary: line; exit %s)" % rc
        want = STUN_EXPECT[nat]
        ok = m is not None and (got == want or got.startswith(want + ","))
        if ok or attempt == ATTEMPTS:
            chk.add(nat, "stun-client", ok, "%r (want %r; attempt %d)" % (got, want, attempt))
            if not ok:
                log(out[-3000:])
            return
        log("retry: %s stun-client said %r (want %r), attempt %d of %d"
            % (nat, got, want, attempt, ATTEMPTS))


def check_natdiscovery(lab, chk, nat):
    for attempt in range(1, ATTEMPTS + 1):   # as check_stun: timeouts
        site = lab.add_site(nat)
        try:
            rc, out = run_in(lab, site.node_ns,
                             ["turnutils_natdiscovery", "-m", "-f", natlab.SERVER_IP])
        finally:
            lab.remove_site(site)
        mm = re.search(r"NAT with (.*?) Mapping!", out)
        fm = re.search(r"NAT with (.*?) Filtering!", out)
        got = (mm.group(1) if mm else None, fm.group(1) if fm else None)
        want = NATDISC_EXPECT[nat]
        ok = got == want
        if ok or attempt == ATTEMPTS:
            chk.add(nat, "turnutils_natdiscovery", ok,
                    "mapping %s, filtering %s (want %s, %s; exit %s; attempt %d)"
                    % (got + want + (rc, attempt)))
            if not ok:
                log(out[-3000:])
            return
        log("retry: %s turnutils_natdiscovery said %s (want %s), attempt %d of %d"
            % (nat, got, want, attempt, ATTEMPTS))


def check_unsolicited(lab, chk, nat):
    site = lab.add_site(nat)
    try:
        lst = lab.popen(site.node_ns, [sys.executable, PROBE, "listen", str(PROBE_PORT),
                                       str(PROBE_MS * 3)],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL, text=True)
        ready = lst.stdout.readline().strip()
        rc, sent = run_in(lab, lab.pub, [sys.executable, PROBE, "send", site.public_ip,
                                         str(PROBE_PORT), str(PROBE_MS)])
        try:
            out, _ = lst.communicate(timeout=PROBE_MS * 3 / 1000.0 + 10)
        except subprocess.TimeoutExpired:
            lst.kill()
            out, _ = lst.communicate()
        arrived = "rx " in out
        sent = sent.strip()
        if nat == "none":
            ok = ready == "ready" and arrived
            want = "arrives"
        else:
            ok = ready == "ready" and not arrived and sent == "silent"
            want = "dropped silently"
        chk.add(nat, "unsolicited inbound", ok,
                "node %s, sender saw %r (want %s)" %
                ("received it" if arrived else "got nothing", sent, want))
    finally:
        lab.remove_site(site)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rendezvousd", required=True)
    ap.add_argument("--types", default=",".join(natlab.NAT_TYPES))
    a = ap.parse_args()
    types = [t for t in a.types.split(",") if t]
    for t in types:
        if t not in natlab.NAT_TYPES:
            log("unknown NAT type", t)
            return 2
    rc = natlab.prepare((a.rendezvousd,))
    if rc is not None:
        return rc
    have_stun = shutil.which("stun") is not None
    have_nd = shutil.which("turnutils_natdiscovery") is not None
    if not have_stun and not have_nd:
        log("SKIP: neither stun (stun-client) nor turnutils_natdiscovery (coturn) installed")
        return natlab.SKIP
    if not have_stun:
        log("note: stun (stun-client) not installed: its checks are skipped")
    if not have_nd:
        log("note: turnutils_natdiscovery (coturn) not installed: its checks are skipped")
    natlab.cleanup_stale()
    chk = Checks()
    t0 = time.monotonic()
    prefix = None
    server_ok = True
    with natlab.Lab() as lab:
        prefix = lab.prefix
        lab.setup_pub()
        lab.start_server(a.rendezvousd)
        for nat in types:
            if have_stun:
                check_stun(lab, chk, nat)
            if have_nd:
                check_natdiscovery(lab, chk, nat)
            check_unsolicited(lab, chk, nat)
        rc, text = lab.stop_server()
        clean = not any(w in text for w in ("AddressSanitizer", "LeakSanitizer",
                                            "runtime error:"))
        server_ok = rc == 0 and clean
        chk.add("server", "rendezvousd exit", server_ok,
                "status %s, %s" % (rc, "no sanitizer report" if clean else "SANITIZER REPORT"))
        if not server_ok:
            log(text[-5000:])
    left = [ns for ns in natlab.list_netns() if ns.startswith(prefix)]
    chk.add("lab", "teardown", not left, "namespaces left: %s" % (left or "none"))

    log("")
    log("%-16s %-24s %s" % ("NAT box", "check", "result"))
    for nat, what, ok, detail in chk.results:
        log("%-16s %-24s %s  %s" % (nat, what, "ok  " if ok else "FAIL", detail))
    bad = chk.failed()
    log("%d checks, %d passed (%.1f s)" % (len(chk.results), len(chk.results) - len(bad),
                                           time.monotonic() - t0))
    return 1 if bad else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except natlab.LabError as e:
        # the lab is already torn down (Lab.__exit__)
        log("FAIL: lab setup: %s" % e)
        sys.exit(1)
