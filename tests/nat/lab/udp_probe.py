#!/usr/bin/env python3
"""udp_probe.py - tiny UDP helpers the lab runs inside namespaces.

  udp_probe.py listen PORT MS
      Binds 0.0.0.0:PORT, prints "ready", then one line "rx IP PORT" per
      datagram received within MS milliseconds; exits 0.
  udp_probe.py send IP PORT MS [SRCPORT]
      Sends one datagram from a connected socket (bound to SRCPORT when
      given) and waits MS milliseconds: prints "icmp" when an ICMP error
      came back (ECONNREFUSED & co), "reply" when a datagram came back,
      else "silent"; exits 0.
"""
import socket
import sys
import time


def listen(port, ms):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    print("ready", flush=True)
    deadline = time.monotonic() + ms / 1000.0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            _, addr = s.recvfrom(2048)
        except socket.timeout:
            break
        print("rx %s %d" % addr, flush=True)
    return 0


def send(ip, port, ms, srcport=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", srcport))
    s.connect((ip, port))
    s.send(b"natlab probe")
    s.settimeout(ms / 1000.0)
    try:
        s.recv(2048)
        print("reply", flush=True)
    except socket.timeout:
        print("silent", flush=True)
    except OSError as e:
        print("icmp %s" % e.strerror, flush=True)
    return 0


def main(a):
    if len(a) == 3 and a[0] == "listen":
        return listen(int(a[1]), int(a[2]))
    if len(a) in (4, 5) and a[0] == "send":
        return send(a[1], int(a[2]), int(a[3]), int(a[4]) if len(a) == 5 else 0)
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
