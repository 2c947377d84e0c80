#!/usr/bin/env python3
"""fake_natpmp.py - a NAT-PMP gateway that answers wrongly, for
portmap.py's bad_gateway case (run inside a box namespace):

  fake_natpmp.py MODE LOGFILE

listens on UDP 5351 (RFC 6886) and answers every request according to
MODE; it logs one line per request ("req op=N len=N") to LOGFILE:
  garbage    7 random bytes
  short      the first 10 bytes of a right answer
  refused    right answers, the mapping with result code 2 (not authorized)
  otherport  a mapping answer for another private port
  zerolife   a mapping answer with lifetime 0 and public port 0
  zeroaddr   a public-address answer of 0.0.0.0
  wrongop    answers with opcode 128 + 5
  version    answers with version 1 (not NAT-PMP)
Runs until killed.
"""
import os
import socket
import struct
import sys
import time

MODES = ("garbage", "short", "refused", "otherport", "zerolife", "zeroaddr", "wrongop",
         "version")
PUBLIC = bytes([203, 0, 113, 250])


def answer(mode, req, epoch):
    op = req[1] if len(req) > 1 else 0
    if mode == "garbage":
        return os.urandom(7)
    ver = 1 if mode == "version" else 0
    rop = 128 + (5 if mode == "wrongop" else op)
    if op == 0:
        addr = bytes(4) if mode == "zeroaddr" else PUBLIC
        out = struct.pack("!BBHI", ver, rop, 0, epoch) + addr
    else:
        iport, eport, life = struct.unpack("!HHI", req[4:12]) if len(req) >= 12 else (0, 0, 0)
        code = 2 if mode == "refused" else 0
        if mode == "otherport":
            iport = (iport % 65535) + 1
        if mode == "zerolife":
            eport, life = 0, 0
        out = struct.pack("!BBHIHHI", ver, rop, code, epoch, iport, eport or iport, life)
    return out[:10] if mode == "short" else out


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in MODES:
        sys.stderr.write(__doc__)
        return 2
    mode, logpath = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", 5351))
    t0 = time.monotonic()
    with open(logpath, "a", buffering=1) as log:
        log.write("ready\n")
        while True:
            req, peer = s.recvfrom(1500)
            log.write("req op=%d len=%d\n" % (req[1] if len(req) > 1 else -1, len(req)))
            s.sendto(answer(mode, req, int(time.monotonic() - t0)), peer)


if __name__ == "__main__":
    sys.exit(main())
