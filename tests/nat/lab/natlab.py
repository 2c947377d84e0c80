#!/usr/bin/env python3
"""natlab.py - the NAT lab's topology: network namespaces, veths, a bridge
and nftables NAT boxes on one Linux machine. No test logic here: the tests
(check_boxes.py, matrix.py) import this module.

Topology (all addresses private to the lab's own namespaces):

    pub  (namespace "<prefix>pub")
         bridge br0: 203.0.113.1/24 and 203.0.113.2/24 (TEST-NET-3);
         rendezvousd listens on 203.0.113.1 (WebSocket + STUN 3478), the
         STUN alternate is 203.0.113.2:3479 (RFC 3489/5780 CHANGE-REQUEST).
    site with a NAT box of type T (lab.add_site(T)):
         box  "<prefix>b<k>": veth "wan" on br0 with a fresh public address
              203.0.113.<n>/24, veth "lan" 10.<k>.0.1/24, ip_forward=1 and
              the nftables ruleset of T (nft_ruleset());
         node "<prefix>n<k>": veth "eth0" 10.<k>.0.2/24, default via the box.
    site without NAT (type "none"): only the node namespace, its "eth0" on
         br0 with a fresh public address.
    shared site (lab.add_shared_site(T, n), T portRestricted or symmetric):
         one box as above whose "lan" is a bridge with n node namespaces
         "<prefix>n<k>", "<prefix>n<k>x2", ... on it (10.<k>.0.2, .3, ...):
         nodes behind one NAT that reach each other on their LAN. A bridge
         table in the box counts UDP between every two of them
         (lan_pair_counts()).
    Boxes and no-NAT nodes route by default via 203.0.113.1; pub has a
    blackhole default route, so traffic to anything outside the lab (a
    peer's private host candidate, say) is dropped silently there.

Every site gets addresses never used before in the run (no stale ARP
entries in pub when sites are made and removed per test), so a test can
build fresh NAT state (conntrack, nft sets) per case by making new sites.

NAT types (the names are the library's wire names; "none" = no NAT):
  fullCone        snat to the wan address (Linux keeps the source port:
                  endpoint-independent mapping) + every inbound UDP to a port
                  the node has sent from is forwarded to it
                  (endpoint-independent filtering).
  restrictedCone  the same snat; inbound UDP from an IP the node has sent
                  to from that port is forwarded (address-dependent
                  filtering): an nft set of (remote IP . node port) filled
                  from the forward path.
  portRestricted  the same snat, only conntrack lets replies in
                  (address- and port-dependent filtering).
  symmetric       snat fully-random: a new random port per destination
                  (address- and port-dependent mapping), conntrack
                  filtering.
Anything a box does not forward and that is addressed to the box itself is
dropped on its wan (no ICMP errors towards the public side).

Port mapping (add_site(T, portmap=True), or "natpmp" / "upnp" for one
protocol): the box also runs Debian's miniupnpd (nftables backend) on its
lan side, NAT-PMP and/or UPnP-IGD enabled, secure_mode, mappings allowed
for 10.0.0.0/8 only. Its tables are those of /etc/miniupnpd/nft_init.sh
(table inet filter: chains forward -> miniupnpd, prerouting ->
prerouting_miniupnpd, postrouting -> postrouting_miniupnpd), with the
forward chain's policy accept (the box's own filter_fwd decides; it lets
DNATed traffic in). miniupnpd refuses to map behind a reserved wan address
(203.0.113.0/24 is TEST-NET-3) unless its own STUN test (ext_perform_stun,
against the lab's rendezvousd) finds no filtering; so such a box keeps its
own traffic out of its NAT and lets the STUN answers in. box_mappings()
lists its live mappings (the rules of prerouting_miniupnpd).

IPv6 is disabled in every lab namespace (an IPv4 lab; link-local IPv6
between two no-NAT nodes on the bridge would bypass the emulation),
except in the IPv6 variant (Lab(ipv6=True)): global IPv6 beside the IPv4
NAT, no NAT66. pub has 2001:db8:ffff::1 and ::2 on br0 and routes
(forwarding on) to every site's /64; a box has 2001:db8:ffff::<host> on
"wan" and 2001:db8:<k>::1/64 on "lan", its node 2001:db8:<k>::2 (a no-NAT
node 2001:db8:ffff::<host> on the bridge); DAD and router advertisements
are off. The box's IPv6 ruleset is a stateful firewall (nft_ruleset6()):
out from the lan anything, in only established / related and the
neighbour discovery the box itself needs. Site-to-site IPv6 is routed
through pub (watch_pair() counts it there too).

WAN emulation (Lab(wan=WanLink(...)), matrix.py --rtt-ms / --loss): every
site's link to the bridge goes through its own namespace "<prefix>w<k>"
where tests/nat/wanem.c bridges two veths ("e0" towards the site, "e1"
towards br0) and delays / jitters / drops frames per direction (this
kernel has no sch_netem); a tbf qdisc on e0 / e1 limits the rate when
asked. A datagram between two sites crosses two links, one between a site
and the server one: WanLink.for_path(rtt_ms, loss_pct) gives the per-link
values for a site-to-site round trip of rtt_ms and a one-way loss of
loss_pct (the server is then rtt_ms / 2 away, with half the loss).

Namespaces are named "rl<pid>-..." (pid of the process that made them);
cleanup_stale() deletes those of dead processes, Lab.close() its own.
Processes started with Lab.popen() get PR_SET_PDEATHSIG(SIGKILL), so they
die with the Python process even when that is killed with SIGKILL.

Also a small CLI for manual work:
    natlab.py cleanup            delete leftovers of dead runs
    natlab.py shell TYPE [TYPE]  build sites and wait (prints the commands
                                 to enter them); Ctrl-C tears down;
                                 TYPEx2 (portRestrictedx2, symmetricx2):
                                 two nodes behind one box
"""
import ctypes
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP = 77

NAT_TYPES = ("fullCone", "restrictedCone", "portRestricted", "symmetric", "none")

PUB_NET = "203.0.113"          # TEST-NET-3, /24 on the pub bridge
SERVER_IP = PUB_NET + ".1"
SERVER_ALT_IP = PUB_NET + ".2"
SERVER_WS_PORT = 8080
STUN_PORT = 3478
STUN_ALT_PORT = 3479
FIRST_SITE_HOST = 10           # public addresses of sites: .10 ...
LAST_SITE_HOST = 250           # ... .250 (one per site, never reused)
SET_TIMEOUT_S = 300            # nft set entries (mapped ports, contacted)
SET_SIZE = 65535
CMD_TIMEOUT_S = 20             # any ip / nft / sysctl command
SERVER_READY_TIMEOUT_S = 20    # rendezvousd start (ASan builds are slow)
STOP_TIMEOUT_S = 10            # SIGTERM -> exit, then SIGKILL

MINIUPNPD = "/usr/sbin/miniupnpd"
MINIUPNPD_READY_TIMEOUT_S = 15  # its STUN test and sockets
PORTMAP_NET = "10.0.0.0/8"      # the lab's private range: mappings allowed
PORTMAP_MODES = (True, "both", "natpmp", "upnp")

NS_RE = re.compile(r"^rl(\d+)-")
_PR_SET_PDEATHSIG = 1


def log(*a):
    print(*a, flush=True)


class LabError(Exception):
    """A lab command failed (the message has the command and its output)."""


class LabSkip(Exception):
    """The machine cannot run the lab (not root, no netns, no nft)."""


def _pdeathsig():
    """preexec_fn: the child gets SIGKILL when this process dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # best effort; cleanup_stale() is the backstop
        pass


def _read_line(f, timeout):
    """One line from a pipe (binary file object), waiting at most timeout
    seconds; "" on timeout or EOF."""
    buf = b""
    deadline = time.monotonic() + timeout
    fd = f.fileno()
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            break
        ch = os.read(fd, 1)
        if not ch:
            break
        buf += ch
    return buf.decode("utf-8", "replace")


def run(cmd, check=True, input=None, timeout=CMD_TIMEOUT_S):
    """Runs cmd (a list), returns CompletedProcess with text stdout/stderr.
    Raises LabError when check and the exit status is not 0."""
    try:
        r = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LabError("timed out after %ss: %s" % (timeout, " ".join(cmd)))
    except OSError as e:
        raise LabError("%s: %s" % (" ".join(cmd), e))
    if check and r.returncode != 0:
        raise LabError("%s -> %d\n%s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    return r


def list_netns():
    """Names of all network namespaces (ip netns list)."""
    r = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in r.stdout.splitlines() if line.strip()]


def _pid_alive(pid):
    """True when pid is a running (not zombie) process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    # "pid (comm) S ...": the state follows the last ')'
    state = stat[stat.rfind(")") + 1:].split()[:1]
    return state != ["Z"]


def _kill_netns_pids(ns):
    """SIGKILLs the processes still running in namespace ns (a lab's own)."""
    r = run(["ip", "netns", "pids", ns], check=False)
    for tok in r.stdout.split():
        try:
            os.kill(int(tok), signal.SIGKILL)
        except (ValueError, ProcessLookupError, PermissionError):
            pass


def delete_netns(ns):
    """Kills what runs in ns and deletes it; ignores a missing ns."""
    _kill_netns_pids(ns)
    run(["ip", "netns", "del", ns], check=False)


def cleanup_stale():
    """Deletes the lab namespaces left by dead processes (a crashed or
    SIGKILLed run). Returns their names."""
    gone = []
    for ns in list_netns():
        m = NS_RE.match(ns)
        if m and int(m.group(1)) != os.getpid() and not _pid_alive(int(m.group(1))):
            delete_netns(ns)
            gone.append(ns)
    if gone:
        log("natlab: removed stale namespaces:", " ".join(gone))
    return gone


def preflight():
    """Raises LabSkip with the reason when this machine cannot run the lab:
    not root, no ip/nft, namespaces or nftables NAT unusable."""
    if os.geteuid() != 0:
        raise LabSkip("the NAT lab needs root (network namespaces, nftables)")
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            raise LabSkip("%s not installed (iproute2 / nftables)" % tool)
    ns = "rl%d-probe" % os.getpid()
    r = run(["ip", "netns", "add", ns], check=False)
    if r.returncode != 0:
        raise LabSkip("cannot create a network namespace (ip netns add: %s)" %
                      (r.stderr.strip() or r.returncode))
    try:
        r = run(["ip", "netns", "exec", ns, "nft", "-f", "-"], check=False,
                input="table ip probe {\n chain post {\n"
                      "  type nat hook postrouting priority srcnat; policy accept;\n"
                      "  oifname \"x\" snat to 192.0.2.1 fully-random\n }\n}\n")
        if r.returncode != 0:
            raise LabSkip("nftables NAT not usable in a namespace: %s" % r.stderr.strip())
    finally:
        delete_netns(ns)


PUB_NET6 = "2001:db8:ffff::"    # the pub bridge's /64 (IPv6 variant)
SERVER_IP6 = PUB_NET6 + "1"
SERVER_ALT_IP6 = PUB_NET6 + "2"


def nft_ruleset6():
    """The IPv6 ruleset of every box in the IPv6 variant: a stateful
    firewall (no NAT) - the lan may send anything, the wan side gets in
    only what answers it (ct established / related), and the box itself
    answers neighbour discovery on its wan."""
    return (
        "table ip6 natlab6 {\n"
        "  chain filter_fwd {\n"
        "    type filter hook forward priority filter; policy drop;\n"
        "    iifname \"lan\" oifname \"wan\" accept\n"
        "    iifname \"wan\" oifname \"lan\" ct state established,related accept\n"
        "  }\n"
        "  chain filter_in {\n"
        "    type filter hook input priority filter; policy accept;\n"
        "    iifname \"wan\" icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept\n"
        "    iifname \"wan\" ct state established,related accept\n"
        "    iifname \"wan\" drop\n"
        "  }\n"
        "}\n")


def nft_ruleset(nat_type, wan_ip, node_ip, portmap=False):
    """The nftables ruleset (text for nft -f) of a box of nat_type whose
    wan address is wan_ip and whose node is node_ip. portmap: the box's own
    traffic is not NATed and the lab's STUN answers reach it (miniupnpd's
    STUN test, see the module doc)."""
    if nat_type not in NAT_TYPES or nat_type == "none":
        raise ValueError("no box for NAT type %r" % nat_type)
    sets, pre, fwd_learn = "", "", ""
    if nat_type == "fullCone":
        # Endpoint-independent filtering: any remote may send to a port
        # the node has sent from (the mapping exists).
        sets = ("  set mapped {\n    type inet_service; flags dynamic,timeout;\n"
                "    timeout %ds; size %d;\n  }\n" % (SET_TIMEOUT_S, SET_SIZE))
        fwd_learn = ("    iifname \"lan\" oifname \"wan\" meta l4proto udp "
                     "update @mapped { udp sport }\n")
        pre = ("    iifname \"wan\" ip daddr %s ct state new udp dport 1024-65535 "
               "udp dport @mapped dnat to %s\n" % (wan_ip, node_ip))
    elif nat_type == "restrictedCone":
        # Address-dependent filtering: remote IP R may send to mapped
        # port P when the node has sent from P to R (any port of R).
        sets = ("  set contacted {\n    type ipv4_addr . inet_service; flags dynamic,timeout;\n"
                "    timeout %ds; size %d;\n  }\n" % (SET_TIMEOUT_S, SET_SIZE))
        fwd_learn = ("    iifname \"lan\" oifname \"wan\" meta l4proto udp "
                     "update @contacted { ip daddr . udp sport }\n")
        pre = ("    iifname \"wan\" ip daddr %s ct state new udp dport 1024-65535 "
               "ip saddr . udp dport @contacted dnat to %s\n" % (wan_ip, node_ip))
    if nat_type == "symmetric":
        post = "    oifname \"wan\" snat to %s fully-random\n" % wan_ip
    else:
        post = "    oifname \"wan\" snat to %s\n" % wan_ip
    own_in = ""
    if portmap:
        post = "    ip saddr %s accept\n" % wan_ip + post
        own_in = ("    iifname \"wan\" ip saddr { %s, %s } udp sport { %d, %d } accept\n" %
                  (SERVER_IP, SERVER_ALT_IP, STUN_PORT, STUN_ALT_PORT))
    return (
        "table ip natlab {\n"
        + sets +
        "  chain nat_pre {\n"
        "    type nat hook prerouting priority dstnat; policy accept;\n"
        + pre +
        "  }\n"
        "  chain nat_post {\n"
        "    type nat hook postrouting priority srcnat; policy accept;\n"
        + post +
        "  }\n"
        "  chain filter_fwd {\n"
        "    type filter hook forward priority filter; policy drop;\n"
        + fwd_learn +
        "    iifname \"lan\" oifname \"wan\" accept\n"
        "    iifname \"wan\" oifname \"lan\" ct state established,related accept\n"
        "    iifname \"wan\" oifname \"lan\" ct status dnat accept\n"
        "  }\n"
        "  chain filter_in {\n"
        "    type filter hook input priority filter; policy accept;\n"
        + own_in +
        "    iifname \"wan\" drop\n"
        "  }\n"
        "}\n")


MINIUPNPD_NFT = """table inet filter {
  chain forward {
    type filter hook forward priority 0; policy accept;
    jump miniupnpd
  }
  chain miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
"""


def miniupnpd_conf(mode, k, pidfile):
    """miniupnpd's configuration for box k: mode True / "both", "natpmp"
    or "upnp" (the protocols enabled)."""
    natpmp = mode in (True, "both", "natpmp")
    upnp = mode in (True, "both", "upnp")
    return "\n".join([
        "ext_ifname=wan",
        "listening_ip=lan",
        "http_port=0",
        "enable_natpmp=%s" % ("yes" if natpmp else "no"),
        "enable_upnp=%s" % ("yes" if upnp else "no"),
        "secure_mode=yes",
        "system_uptime=yes",
        "ipv6_disable=yes",
        "ext_perform_stun=yes",
        "ext_stun_host=%s" % SERVER_IP,
        "ext_stun_port=%d" % STUN_PORT,
        "min_lifetime=1",
        "uuid=3d3a6f3e-0000-4000-8000-%012x" % k,
        "allow 1024-65535 %s 1024-65535" % PORTMAP_NET,
        "deny 0-65535 0.0.0.0/0 0-65535",
        ""])


class WanLink:
    """Per-link WAN model of a lab (one direction's values apply to both
    directions): one-way delay and jitter (ms, uniform +-jitter), loss
    (percent, per frame), optional rate (kbit/s, tbf) and reordering."""

    def __init__(self, wanem, delay_ms=0.0, jitter_ms=0.0, loss_pct=0.0, rate_kbit=0,
                 reorder=False):
        self.wanem = wanem
        self.delay_ms = float(delay_ms)
        self.jitter_ms = float(jitter_ms)
        self.loss_pct = float(loss_pct)
        self.rate_kbit = int(rate_kbit)
        self.reorder = bool(reorder)

    @classmethod
    def for_path(cls, wanem, rtt_ms, loss_pct, jitter_ms=0.0, rate_kbit=0, reorder=False):
        """The link model that gives two sites a round trip of rtt_ms and a
        one-way loss of loss_pct percent (two links in a row: each has
        rtt_ms / 4 of delay and 1 - sqrt(1 - loss) of loss)."""
        link_loss = (1.0 - (1.0 - loss_pct / 100.0) ** 0.5) * 100.0
        return cls(wanem, rtt_ms / 4.0, jitter_ms, link_loss, rate_kbit, reorder)

    def argv(self, a_if, b_if):
        argv = [self.wanem, "--a", a_if, "--b", b_if, "--delay-ms", "%.3f" % self.delay_ms,
                "--jitter-ms", "%.3f" % self.jitter_ms, "--loss", "%.4f" % self.loss_pct]
        if self.reorder:
            argv.append("--reorder")
        return argv

    def describe(self):
        return ("per link: delay %.2f ms, jitter +-%.2f ms, loss %.3f%%%s%s" %
                (self.delay_ms, self.jitter_ms, self.loss_pct,
                 ", rate %d kbit/s" % self.rate_kbit if self.rate_kbit else "",
                 ", reordering" if self.reorder else ""))


WANEM_READY_TIMEOUT_S = 10     # wanem prints its ready line


class Site:
    """One node's place in the lab: its namespace, and its box's."""

    def __init__(self, k, nat_type, node_ns, box_ns, node_ip, public_ip):
        self.k = k
        self.nat_type = nat_type
        self.node_ns = node_ns
        self.box_ns = box_ns         # None for "none"
        self.node_ip = node_ip
        self.public_ip = public_ip   # the box's wan address, or the node's
        self.portmap = None          # the box's miniupnpd mode, None
        self.miniupnpd = None        # its Popen
        self.miniupnpd_log = None
        self.node_nses = [node_ns]   # a shared site: every node behind the box
        self.node_ips = [node_ip]
        self.wan_ns = None           # the link's emulator namespace (Lab(wan=...))
        self.node_ip6 = None         # the node's global IPv6 address (Lab(ipv6=True))

    def __repr__(self):
        return "Site(%s node=%s %s public=%s)" % (self.nat_type, self.node_ns, self.node_ip,
                                                  self.public_ip)


class Lab:
    """A lab: the pub namespace and its bridge, sites, processes. Use as a
    context manager (close() deletes everything, also on exceptions)."""

    def __init__(self, tag="", wan=None, ipv6=False):
        self.prefix = "rl%d-%s" % (os.getpid(), tag)
        self.ipv6 = ipv6             # the IPv6 variant (module comment)
        self.wan = wan               # WanLink: every site's link emulated
        self.wan_procs = {}          # wan namespace -> wanem Popen
        self.wan_stats = []          # final stats line of every wanem stopped
        self.namespaces = []         # ours, in creation order
        self.procs = []              # Popen objects we started
        self.tmp = tempfile.mkdtemp(prefix="rdv-natlab-")
        self.pub = self.prefix + "pub"
        self.next_k = 1
        self.next_host = FIRST_SITE_HOST
        self.server = None
        self.server_log = None
        self._closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- namespaces ------------------------------------------------------

    def _add_ns(self, ns, v6=False):
        """A new namespace with lo up and IPv6 off, or (v6) on without DAD
        and router advertisements (the IPv6 variant's pub, boxes, nodes)."""
        run(["ip", "netns", "add", ns])
        self.namespaces.append(ns)
        self.ip(ns, "link", "set", "lo", "up")
        on = "0" if v6 else "1"
        self.sysctl(ns, "net.ipv6.conf.all.disable_ipv6", on)
        self.sysctl(ns, "net.ipv6.conf.default.disable_ipv6", on)
        if v6:
            for key in ("accept_dad", "accept_ra", "autoconf"):
                self.sysctl(ns, "net.ipv6.conf.all.%s" % key, "0")
                self.sysctl(ns, "net.ipv6.conf.default.%s" % key, "0")

    def ip(self, ns, *args):
        return run(["ip", "-n", ns] + list(args))

    def sysctl(self, ns, key, value):
        return run(["ip", "netns", "exec", ns, "sysctl", "-qw", "%s=%s" % (key, value)])

    def exec_cmd(self, ns, argv):
        """argv prefixed to run inside namespace ns."""
        return ["ip", "netns", "exec", ns] + list(argv)

    def setup_pub(self):
        """Makes the pub namespace with its bridge and the server's two
        addresses."""
        self._add_ns(self.pub, v6=self.ipv6)
        self.ip(self.pub, "link", "add", "br0", "type", "bridge")
        self.ip(self.pub, "addr", "add", SERVER_IP + "/24", "dev", "br0")
        self.ip(self.pub, "addr", "add", SERVER_ALT_IP + "/24", "dev", "br0")
        self.ip(self.pub, "link", "set", "br0", "up")
        # Sites route everything via the pub side (like hosts on the
        # internet); what is not in the lab (e.g. a peer's private host
        # candidate) is dropped here without an ICMP error.
        self.ip(self.pub, "route", "add", "blackhole", "0.0.0.0/0")
        # Counters of UDP bridged between two sites (watch_pair): what
        # really went site to site, not through the server.
        run(["ip", "netns", "exec", self.pub, "nft", "-f", "-"],
            input="table bridge natlab_watch {\n  chain bridged {\n"
                  "    type filter hook forward priority filter; policy accept;\n  }\n}\n")
        if self.ipv6:
            self._setup_pub6()

    def _setup_pub6(self):
        """IPv6 variant: the server's IPv6 addresses on br0, forwarding
        between the sites' /64s (routes added per site), a counting chain
        for site-to-site IPv6 (routed, not bridged)."""
        for a6 in (SERVER_IP6, SERVER_ALT_IP6):
            self.ip(self.pub, "-6", "addr", "add", a6 + "/64", "dev", "br0", "nodad")
        self.sysctl(self.pub, "net.ipv6.conf.all.forwarding", "1")
        self.ip(self.pub, "-6", "route", "add", "blackhole", "default")
        run(["ip", "netns", "exec", self.pub, "nft", "-f", "-"],
            input="table ip6 natlab_watch6 {\n  chain routed {\n"
                  "    type filter hook forward priority filter; policy accept;\n  }\n}\n")

    def _site6(self, k, host, node_ns, box_ns):
        """IPv6 variant: addresses and routes of site k (public host
        number host); returns the node's global address."""
        wan6 = "%s%x" % (PUB_NET6, host)
        if box_ns is None:
            self.ip(node_ns, "-6", "addr", "add", wan6 + "/64", "dev", "eth0", "nodad")
            self.ip(node_ns, "-6", "route", "add", "default", "via", SERVER_IP6)
            return wan6
        lan_box6, node6 = "2001:db8:%x::1" % k, "2001:db8:%x::2" % k
        self.ip(box_ns, "-6", "addr", "add", wan6 + "/64", "dev", "wan", "nodad")
        self.ip(box_ns, "-6", "addr", "add", lan_box6 + "/64", "dev", "lan", "nodad")
        self.ip(box_ns, "-6", "route", "add", "default", "via", SERVER_IP6)
        self.sysctl(box_ns, "net.ipv6.conf.all.forwarding", "1")
        self.ip(node_ns, "-6", "addr", "add", node6 + "/64", "dev", "eth0", "nodad")
        self.ip(node_ns, "-6", "route", "add", "default", "via", lan_box6)
        self.ip(self.pub, "-6", "route", "add", "2001:db8:%x::/64" % k, "via", wan6)
        run(["ip", "netns", "exec", box_ns, "nft", "-f", "-"], input=nft_ruleset6())
        return node6

    def _alloc(self):
        if self.next_host > LAST_SITE_HOST or self.next_k > 250:
            raise LabError("out of lab addresses (too many sites in one run)")
        k, host = self.next_k, self.next_host
        self.next_k += 1
        self.next_host += 1
        return k, "%s.%d" % (PUB_NET, host)

    def _veth_to_pub(self, ns, ifname, pub_ifname, k=None):
        """A veth pair: ifname in ns, pub_ifname on the pub bridge. With a
        WAN model (and the site number k) the link goes through an
        emulator namespace instead (_wan_link); returns its name or None."""
        if self.wan is not None and k is not None:
            return self._wan_link(ns, ifname, pub_ifname, k)
        run(["ip", "-n", self.pub, "link", "add", pub_ifname, "type", "veth",
             "peer", "name", ifname, "netns", ns])
        self.ip(self.pub, "link", "set", pub_ifname, "master", "br0")
        self.ip(self.pub, "link", "set", pub_ifname, "up")

    def add_site(self, nat_type, portmap=None):
        """Builds a node (and its box unless nat_type is "none") with fresh
        addresses and fresh NAT state. portmap (True / "both", "natpmp",
        "upnp"): the box runs miniupnpd with those protocols (the server
        must run: miniupnpd's STUN test asks it). Returns the Site."""
        if nat_type not in NAT_TYPES:
            raise ValueError("unknown NAT type %r" % nat_type)
        if portmap and (nat_type == "none" or portmap not in PORTMAP_MODES):
            raise ValueError("no port mapping %r for a %r site" % (portmap, nat_type))
        k, public_ip = self._alloc()
        node_ns = "%sn%d" % (self.prefix, k)
        self._add_ns(node_ns, v6=self.ipv6)
        if nat_type == "none":
            wan_ns = self._veth_to_pub(node_ns, "eth0", "h%d" % k, k)
            self.ip(node_ns, "addr", "add", public_ip + "/24", "dev", "eth0")
            self.ip(node_ns, "link", "set", "eth0", "up")
            self.ip(node_ns, "route", "add", "default", "via", SERVER_IP)
            site = Site(k, nat_type, node_ns, None, public_ip, public_ip)
            site.wan_ns = wan_ns
            if self.ipv6:
                site.node_ip6 = self._site6(k, int(public_ip.rsplit(".", 1)[1]), node_ns, None)
            return site
        box_ns = "%sb%d" % (self.prefix, k)
        self._add_ns(box_ns, v6=self.ipv6)
        lan_box, lan_node = "10.%d.0.1" % k, "10.%d.0.2" % k
        wan_ns = self._veth_to_pub(box_ns, "wan", "b%d" % k, k)
        self.ip(box_ns, "addr", "add", public_ip + "/24", "dev", "wan")
        self.ip(box_ns, "link", "set", "wan", "up")
        self.ip(box_ns, "route", "add", "default", "via", SERVER_IP)
        run(["ip", "-n", box_ns, "link", "add", "lan", "type", "veth",
             "peer", "name", "eth0", "netns", node_ns])
        self.ip(box_ns, "addr", "add", lan_box + "/24", "dev", "lan")
        self.ip(box_ns, "link", "set", "lan", "up")
        self.ip(node_ns, "addr", "add", lan_node + "/24", "dev", "eth0")
        self.ip(node_ns, "link", "set", "eth0", "up")
        self.ip(node_ns, "route", "add", "default", "via", lan_box)
        self.sysctl(box_ns, "net.ipv4.ip_forward", "1")
        run(["ip", "netns", "exec", box_ns, "nft", "-f", "-"],
            input=nft_ruleset(nat_type, public_ip, lan_node, portmap=bool(portmap)))
        site = Site(k, nat_type, node_ns, box_ns, lan_node, public_ip)
        site.wan_ns = wan_ns
        if self.ipv6:
            site.node_ip6 = self._site6(k, int(public_ip.rsplit(".", 1)[1]), node_ns, box_ns)
        if portmap:
            self._start_miniupnpd(site, portmap)
        return site

    def _start_miniupnpd(self, site, mode):
        """Runs miniupnpd in the site's box (module doc) and waits until it
        listens with port forwarding enabled. Raises LabError otherwise."""
        run(["ip", "netns", "exec", site.box_ns, "nft", "-f", "-"], input=MINIUPNPD_NFT)
        conf = os.path.join(self.tmp, "miniupnpd%d.conf" % site.k)
        pidfile = os.path.join(self.tmp, "miniupnpd%d.pid" % site.k)
        with open(conf, "w") as f:
            f.write(miniupnpd_conf(mode, site.k, pidfile))
        site.portmap = mode
        site.miniupnpd_log = os.path.join(self.tmp, "miniupnpd%d.log" % site.k)
        with open(site.miniupnpd_log, "wb") as lf:
            site.miniupnpd = self.popen(site.box_ns, [MINIUPNPD, "-f", conf, "-d", "-P", pidfile],
                                        stdout=lf, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        want = []
        if mode in (True, "both", "natpmp"):
            want.append("Listening for NAT-PMP")
        if mode in (True, "both", "upnp"):
            want.append("HTTP listening on port")
        deadline = time.time() + MINIUPNPD_READY_TIMEOUT_S
        text = ""
        while time.time() < deadline:
            text = self.miniupnpd_text(site)
            if "Port forwarding is now disabled" in text or "EXITING" in text:
                break
            if all(w in text for w in want) and "Port forwarding is now enabled" in text:
                return
            if site.miniupnpd.poll() is not None:
                break
            time.sleep(0.05)
        raise LabError("miniupnpd did not come up in %s:\n%s" % (site.box_ns, text[-3000:]))

    def miniupnpd_text(self, site):
        if not site.miniupnpd_log or not os.path.exists(site.miniupnpd_log):
            return ""
        with open(site.miniupnpd_log, "r", errors="replace") as f:
            return f.read()

    def box_mappings(self, site):
        """The live port mappings of the site's miniupnpd: one text per rule
        of its prerouting_miniupnpd chain (nft), [] when none; None when
        the chain cannot be read."""
        r = run(["ip", "netns", "exec", site.box_ns, "nft", "list", "chain", "inet", "filter",
                 "prerouting_miniupnpd"], check=False)
        if r.returncode != 0:
            return None
        return [ln.strip() for ln in r.stdout.splitlines() if "dnat" in ln]

    def add_shared_site(self, nat_type, nodes=2):
        """A box of nat_type (portRestricted or symmetric: their filtering is
        conntrack's, so it holds for any number of nodes) with `nodes` node
        namespaces on one LAN bridge behind it (see the module comment).
        Returns the Site; site.node_nses / site.node_ips list the nodes."""
        if nat_type not in ("portRestricted", "symmetric"):
            raise ValueError("a shared site needs a conntrack-filtering box, not %r" % nat_type)
        if not 2 <= nodes <= 8:
            raise ValueError("2..8 nodes behind one box")
        k, public_ip = self._alloc()
        box_ns = "%sb%d" % (self.prefix, k)
        self._add_ns(box_ns)
        lan_box = "10.%d.0.1" % k
        wan_ns = self._veth_to_pub(box_ns, "wan", "b%d" % k, k)
        self.ip(box_ns, "addr", "add", public_ip + "/24", "dev", "wan")
        self.ip(box_ns, "link", "set", "wan", "up")
        self.ip(box_ns, "route", "add", "default", "via", SERVER_IP)
        self.ip(box_ns, "link", "add", "lan", "type", "bridge")
        self.ip(box_ns, "addr", "add", lan_box + "/24", "dev", "lan")
        self.ip(box_ns, "link", "set", "lan", "up")
        # Bridged LAN traffic must not meet the box's ip forward chain
        # (br_netfilter, when loaded, would send it there: policy drop).
        for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-arptables"):
            run(["ip", "netns", "exec", box_ns, "sysctl", "-qw", key + "=0"], check=False)
        self.sysctl(box_ns, "net.ipv4.ip_forward", "1")
        nses, ips = [], []
        for j in range(nodes):
            ns = "%sn%d" % (self.prefix, k) + ("" if j == 0 else "x%d" % (j + 1))
            ip = "10.%d.0.%d" % (k, j + 2)
            self._add_ns(ns)
            port = "l%d" % (j + 1)
            run(["ip", "-n", box_ns, "link", "add", port, "type", "veth",
                 "peer", "name", "eth0", "netns", ns])
            self.ip(box_ns, "link", "set", port, "master", "lan")
            self.ip(box_ns, "link", "set", port, "up")
            self.ip(ns, "addr", "add", ip + "/24", "dev", "eth0")
            self.ip(ns, "link", "set", "eth0", "up")
            self.ip(ns, "route", "add", "default", "via", lan_box)
            nses.append(ns)
            ips.append(ip)
        run(["ip", "netns", "exec", box_ns, "nft", "-f", "-"],
            input=nft_ruleset(nat_type, public_ip, ips[0]))
        # Counters of UDP bridged between two nodes on the LAN.
        rules = "".join(
            "    ip saddr %s ip daddr %s meta l4proto udp counter comment \"%s_%s\"\n" %
            (a, b, a, b) for a in ips for b in ips if a != b)
        run(["ip", "netns", "exec", box_ns, "nft", "-f", "-"],
            input="table bridge natlab_lan {\n  chain lanfwd {\n"
                  "    type filter hook forward priority filter; policy accept;\n"
                  + rules + "  }\n}\n")
        site = Site(k, nat_type, nses[0], box_ns, ips[0], public_ip)
        site.node_nses, site.node_ips = nses, ips
        site.wan_ns = wan_ns
        return site

    def lan_pair_counts(self, site, ip_a, ip_b):
        """(UDP datagrams a->b, b->a) bridged on a shared site's LAN;
        (-1, -1) when the counters cannot be read."""
        r = run(["ip", "netns", "exec", site.box_ns, "nft", "-j", "list", "chain", "bridge",
                 "natlab_lan", "lanfwd"], check=False)
        got = {}
        try:
            for item in json.loads(r.stdout)["nftables"]:
                rule = item.get("rule")
                if not rule:
                    continue
                for e in rule["expr"]:
                    if "counter" in e:
                        got[rule.get("comment", "")] = e["counter"]["packets"]
        except (ValueError, KeyError, TypeError):
            return -1, -1
        return got.get("%s_%s" % (ip_a, ip_b), -1), got.get("%s_%s" % (ip_b, ip_a), -1)

    def box_input_udp(self, site):
        """UDP datagrams from the box's LAN to its own wan address so far
        (hairpin attempts: a node probing a peer's public address behind
        the same box); -1 when unknown. Counted by a rule this adds on the
        first call (0 then)."""
        tag = "natlab_hairpin"
        r = run(["ip", "netns", "exec", site.box_ns, "nft", "-j", "list", "table", "ip", tag],
                check=False)
        if r.returncode != 0:
            run(["ip", "netns", "exec", site.box_ns, "nft", "-f", "-"],
                input="table ip %s {\n  chain pre {\n"
                      "    type filter hook prerouting priority raw; policy accept;\n"
                      "    iifname \"lan\" ip daddr %s meta l4proto udp counter\n  }\n}\n" %
                      (tag, site.public_ip))
            return 0
        try:
            for item in json.loads(r.stdout)["nftables"]:
                rule = item.get("rule")
                for e in (rule or {}).get("expr", []):
                    if "counter" in e:
                        return e["counter"]["packets"]
        except (ValueError, KeyError, TypeError):
            pass
        return -1

    def remove_site(self, site):
        """Kills the site's processes and deletes its namespaces."""
        for ns in list(site.node_nses[1:]):
            if ns in self.namespaces:
                delete_netns(ns)
                self.namespaces.remove(ns)
        if site.wan_ns:
            self._wan_stop(site.wan_ns)
        if site.node_ip6 and site.box_ns:
            run(["ip", "-n", self.pub, "-6", "route", "del", "2001:db8:%x::/64" % site.k],
                check=False)
        for ns in (site.node_ns, site.box_ns, site.wan_ns):
            if ns and ns in self.namespaces:
                delete_netns(ns)
                self.namespaces.remove(ns)

    def _wan_link(self, ns, ifname, pub_ifname, k):
        """ifname in ns <-> e0 [wanem] e1 <-> pub_ifname on br0, the
        emulator in namespace <prefix>w<k>. Returns that namespace."""
        wan_ns = "%sw%d" % (self.prefix, k)
        self._add_ns(wan_ns)
        run(["ip", "-n", wan_ns, "link", "add", "e0", "type", "veth",
             "peer", "name", ifname, "netns", ns])
        run(["ip", "-n", self.pub, "link", "add", pub_ifname, "type", "veth",
             "peer", "name", "e1", "netns", wan_ns])
        self.ip(self.pub, "link", "set", pub_ifname, "master", "br0")
        self.ip(self.pub, "link", "set", pub_ifname, "up")
        for dev in ("e0", "e1"):
            self.ip(wan_ns, "link", "set", dev, "up")
            if self.wan.rate_kbit:
                # burst: at least one MTU and ~5 ms at the rate
                burst = max(1600, self.wan.rate_kbit * 1000 // 8 // 200)
                run(["ip", "netns", "exec", wan_ns, "tc", "qdisc", "add", "dev", dev, "root",
                     "tbf", "rate", "%dkbit" % self.wan.rate_kbit, "burst", str(burst),
                     "latency", "100ms"])
        p = self.popen(wan_ns, self.wan.argv("e0", "e1"), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.wan_procs[wan_ns] = p
        line = _read_line(p.stdout, WANEM_READY_TIMEOUT_S)
        if '"ready"' not in line:
            self.stop(p)
            raise LabError("wanem in %s did not start: %s %s" % (
                wan_ns, line.strip(), p.stderr.read().decode("utf-8", "replace")[-2000:]))
        return wan_ns

    def _wan_stop(self, wan_ns):
        """Stops the emulator of a link; its final counters (a dict, or
        None) are appended to self.wan_stats and returned."""
        p = self.wan_procs.pop(wan_ns, None)
        if p is None:
            return None
        self.stop(p)
        stats = None
        try:
            for line in p.stdout.read().decode("utf-8", "replace").splitlines():
                if '"stats"' in line:
                    stats = json.loads(line)
        except (ValueError, OSError):
            stats = None
        if stats:
            stats["ns"] = wan_ns
            self.wan_stats.append(stats)
        return stats

    def wan_totals(self):
        """Sums of the stopped emulators' counters over both directions:
        {"rx", "tx", "lost", "overflow", "tx_err", "control", "late_max_us",
        "late_avg_us"}
        (control: ARP / neighbour discovery frames, passed unmodelled)."""
        tot = {"rx": 0, "tx": 0, "lost": 0, "overflow": 0, "tx_err": 0, "control": 0,
               "late_max_us": 0, "late_avg_us": 0}
        late_sum = 0
        for st in self.wan_stats:
            for d in ("ab", "ba"):
                x = st.get(d, {})
                for key in ("rx", "tx", "lost", "overflow", "tx_err", "control"):
                    tot[key] += x.get(key, 0)
                tot["late_max_us"] = max(tot["late_max_us"], x.get("late_max_us", 0))
                late_sum += x.get("late_avg_us", 0) * x.get("tx", 0)
        tot["late_avg_us"] = late_sum // max(1, tot["tx"])
        return tot

    def box_ruleset(self, site):
        """The box's live ruleset (nft list ruleset), "" for no box."""
        if not site.box_ns:
            return ""
        return run(["ip", "netns", "exec", site.box_ns, "nft", "list", "ruleset"],
                   check=False).stdout

    def box_nft(self, site, *args, input=None, check=True):
        """Runs nft with args (e.g. "-f", "-" with input) in the site's box
        namespace (a test's own rules beside the box's ruleset)."""
        if not site.box_ns:
            raise LabError("site %r has no box" % (site,))
        return run(["ip", "netns", "exec", site.box_ns, "nft"] + list(args), input=input,
                   check=check)

    def conntrack_count(self, site):
        if not site.box_ns:
            return 0
        r = run(["ip", "netns", "exec", site.box_ns, "cat",
                 "/proc/sys/net/netfilter/nf_conntrack_count"], check=False)
        try:
            return int(r.stdout.strip())
        except ValueError:
            return -1

    def watch_pair(self, site_a, site_b):
        """Starts counting UDP datagrams bridged between the public
        addresses of two sites (both directions). Returns a tag for
        pair_counts()."""
        tag = "p%d_%d" % (site_a.k, site_b.k)
        for x, y, d in ((site_a, site_b, "ab"), (site_b, site_a, "ba")):
            run(["ip", "netns", "exec", self.pub, "nft", "add", "rule", "bridge",
                 "natlab_watch", "bridged", "ip", "saddr", x.public_ip, "ip", "daddr",
                 y.public_ip, "meta", "l4proto", "udp", "counter", "comment",
                 "%s_%s" % (tag, d)])
            if x.node_ip6 and y.node_ip6:
                run(["ip", "netns", "exec", self.pub, "nft", "add", "rule", "ip6",
                     "natlab_watch6", "routed", "ip6", "saddr", x.node_ip6, "ip6", "daddr",
                     y.node_ip6, "meta", "l4proto", "udp", "counter", "comment",
                     "%s_%s" % (tag, d)])
        return tag

    def pair_counts(self, tag):
        """(datagrams a->b, datagrams b->a) since watch_pair(); (-1, -1)
        when the counters cannot be read. IPv6 variant: bridged IPv4 plus
        routed IPv6 between the two nodes."""
        chains = [("bridge", "natlab_watch", "bridged")]
        if self.ipv6:
            chains.append(("ip6", "natlab_watch6", "routed"))
        got = {}
        for fam, table, chain in chains:
            r = run(["ip", "netns", "exec", self.pub, "nft", "-j", "list", "chain", fam,
                     table, chain], check=False)
            try:
                for item in json.loads(r.stdout)["nftables"]:
                    rule = item.get("rule")
                    if not rule or not str(rule.get("comment", "")).startswith(tag + "_"):
                        continue
                    for e in rule["expr"]:
                        if "counter" in e:
                            d = rule["comment"][len(tag) + 1:]
                            got[d] = got.get(d, 0) + e["counter"]["packets"]
            except (ValueError, KeyError, TypeError):
                return -1, -1
        return got.get("ab", -1), got.get("ba", -1)

    # ---- processes -------------------------------------------------------

    def popen(self, ns, argv, **kw):
        """Starts argv inside namespace ns (ip netns exec execs it: the
        Popen's pid is the program's). It dies with us; close() kills it."""
        p = subprocess.Popen(self.exec_cmd(ns, argv), preexec_fn=_pdeathsig, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, timeout=STOP_TIMEOUT_S):
        """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit status."""
        if p.poll() is None:
            try:
                p.terminate()
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        return p.returncode

    def start_server(self, rendezvousd, extra=()):
        """Starts rendezvousd in pub: WebSocket on SERVER_IP:SERVER_WS_PORT,
        STUN on 3478 with the alternate 203.0.113.2:3479, a fresh DB.
        Returns the ws:// URL. Raises LabError when it does not come up."""
        self.server_log = os.path.join(self.tmp, "rendezvousd.log")
        cmd = [rendezvousd, "--listen", SERVER_IP, "--port", str(SERVER_WS_PORT),
               "--db", os.path.join(self.tmp, "rendezvous.db"),
               "--stun-port", str(STUN_PORT), "--stun-alt-port", str(STUN_ALT_PORT),
               "--stun-alt-address", SERVER_ALT_IP, "--log-level", "info"] + list(extra)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RENDEZVOUS_")}
        with open(self.server_log, "wb") as lf:
            self.server = self.popen(self.pub, cmd, stdout=lf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        deadline = time.time() + SERVER_READY_TIMEOUT_S
        text = ""
        while time.time() < deadline:
            text = self.server_text()
            if "stun on udp://" in text and re.search(r"listening|ws://", text):
                return "ws://%s:%d/v1" % (SERVER_IP, SERVER_WS_PORT)
            if self.server.poll() is not None:
                break
            time.sleep(0.05)
        raise LabError("rendezvousd did not start:\n" + text)

    def server_text(self):
        if not self.server_log or not os.path.exists(self.server_log):
            return ""
        with open(self.server_log, "r", errors="replace") as f:
            return f.read()

    def stop_server(self):
        """Stops rendezvousd. Returns (exit status, log text); None when
        none ran."""
        if not self.server:
            return None
        rc = self.stop(self.server)
        self.server = None
        return rc, self.server_text()

    # ---- teardown --------------------------------------------------------

    def close(self):
        """Kills every process we started, deletes every namespace we made
        and the temp dir. Idempotent. Verifies no namespace of ours is left."""
        if self._closed:
            return
        self._closed = True
        for wan_ns in list(self.wan_procs):
            self._wan_stop(wan_ns)
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
            try:
                p.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        for ns in reversed(self.namespaces):
            delete_netns(ns)
        self.namespaces = []
        left = [ns for ns in list_netns() if ns.startswith(self.prefix)]
        for ns in left:
            delete_netns(ns)
        left = [ns for ns in list_netns() if ns.startswith(self.prefix)]
        if left:
            log("natlab: WARNING: namespaces left behind:", " ".join(left))
        shutil.rmtree(self.tmp, ignore_errors=True)


def install_signal_handlers():
    """SIGTERM / SIGINT / SIGHUP raise SystemExit so `with Lab()` and
    finally blocks tear the lab down."""
    def on_sig(signum, _frame):
        raise SystemExit(128 + signum)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_sig)


def prepare(executables):
    """The common start of a lab test: every path in `executables` must be
    executable, then the signal handlers and the preflight. Returns None
    when the lab can run, else the exit code to return: 1 (a program is
    missing, said as FAIL) or SKIP (this machine cannot run the lab, said
    as SKIP on stderr)."""
    for path in executables:
        if not os.access(path, os.X_OK):
            log("FAIL: not executable:", path)
            return 1
    install_signal_handlers()
    try:
        preflight()
    except LabSkip as e:
        log("SKIP:", e)
        return SKIP
    return None


def _cli(argv):
    if len(argv) >= 1 and argv[0] == "cleanup":
        cleanup_stale()
        return 0
    if len(argv) >= 2 and argv[0] == "shell":
        install_signal_handlers()
        preflight()
        cleanup_stale()
        with Lab() as lab:
            lab.setup_pub()
            log("pub:", lab.pub, "(server addresses %s, %s)" % (SERVER_IP, SERVER_ALT_IP))
            for t in argv[1:]:
                if t.endswith("x2"):  # e.g. symmetricx2: two nodes behind one box
                    s = lab.add_shared_site(t[:-2], 2)
                else:
                    s = lab.add_site(t)
                for ns in s.node_nses:
                    log(s, "-> ip netns exec %s bash" % ns)
            log("Ctrl-C to tear down")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(_cli(sys.argv[1:]))
    except LabSkip as e:
        log("SKIP:", e)
        sys.exit(SKIP)
