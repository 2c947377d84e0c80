#!/usr/bin/python3
"""make_vectors.py - reference implementation of the rendezvous v1 signatures.

An implementation of PROTOCOL.md section 4 that shares no code with the C
codec (schema/jcs.c, schema/sign.c): a small RFC 8785 (JCS) canonicaliser
and Ed25519 through python3-nacl. It writes, deterministically (fixed seeds,
timestamps, nonces and UUIDs; Ed25519 signatures are deterministic):

  signing.json  signing test vectors: keys, valid cases for every signed
                type, invalid cases that must fail verification, and the
                number-formatting table of RFC 8785 appendix B
  example.json  the complete exchange of PROTOCOL.md section 12
  fleet.json    fleet certificates (PROTOCOL.md section 6.1): keys, and
                cases with the node and time they are checked for and the
                outcome a server must reach

Usage:
  make_vectors.py             (re)write both files next to this script
  make_vectors.py --check     regenerate in memory; exit 1 if a file differs
  make_vectors.py --markdown  print the body of PROTOCOL.md section 12

Library use (tests/schema/test_schemas.py imports it): canonicalize(),
signing_input(), sign_body(), verify_message(), verify_fleet_cert().
"""

import argparse
import base64
import copy
import decimal
import hashlib
import json
import math
import os
import re
import struct
import sys
import textwrap

import nacl.exceptions
import nacl.public
import nacl.signing

HERE = os.path.dirname(os.path.abspath(__file__))
SIGNING_FILE = os.path.join(HERE, "signing.json")
EXAMPLE_FILE = os.path.join(HERE, "example.json")
FLEET_FILE = os.path.join(HERE, "fleet.json")

DOMAIN_PREFIX = b"rendezvous.v1/"
SIGNED_TYPES = ("hello", "offer", "answer", "iceCandidate", "relayOpen",
                "relayReady")
HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
HEX128 = re.compile(r"\A[0-9a-f]{128}\Z")


# --------------------------------------------------------------------------
# RFC 8785 JSON Canonicalization Scheme


def jcs_number(value):
    """ECMAScript Number.prototype.toString of a finite double (RFC 8785
    3.2.2.3). Python ints are converted to double first, as I-JSON says."""
    if isinstance(value, bool):
        raise TypeError("bool is not a number")
    if isinstance(value, int):
        value = float(value)  # OverflowError beyond the double range
    if not isinstance(value, float):
        raise TypeError("not a number: %r" % (value,))
    if not math.isfinite(value):
        raise ValueError("NaN and infinities are not JSON")
    if value == 0:
        return "0"  # also -0
    sign = "-" if value < 0 else ""
    # repr() is the shortest round-trip representation, closest to the
    # exact value: the digits ECMAScript wants. Only the layout differs.
    tup = decimal.Decimal(repr(abs(value))).as_tuple()
    alldigits = "".join(str(d) for d in tup.digits)
    n = len(alldigits) + tup.exponent  # value = 0.DIGITS x 10^n
    s = alldigits.rstrip("0")
    k = len(s)
    if k <= n <= 21:
        out = s + "0" * (n - k)
    elif 0 < n <= 21:
        out = s[:n] + "." + s[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * (-n) + s
    else:
        e = n - 1
        es = ("+" if e >= 0 else "-") + str(abs(e))
        out = (s if k == 1 else s[0] + "." + s[1:]) + "e" + es
    return sign + out


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t",
                  "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def jcs_string(s):
    """A JSON string with the minimal escapes of RFC 8785 3.2.2.2."""
    out = ['"']
    for ch in s:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        elif 0xD800 <= ord(ch) <= 0xDFFF:
            raise ValueError("lone surrogate: not valid UTF-8")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _utf16_key(name):
    return name.encode("utf-16-be")


class RawNumber:
    """A number written on the wire exactly as `text` (e.g. "1E21",
    "333333333.33333329"): lets the vectors carry number spellings that
    json.dumps would never produce. Its value is the double float(text)."""

    def __init__(self, text):
        self.text = text
        self.value = float(text)

    def __deepcopy__(self, memo):
        return self


def canonicalize(value):
    """The RFC 8785 canonical text (a str; encode as UTF-8 for bytes)."""
    if isinstance(value, RawNumber):
        return jcs_number(value.value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return jcs_number(value)
    if isinstance(value, str):
        return jcs_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(canonicalize(v) for v in value) + "]"
    if isinstance(value, dict):
        names = sorted(value, key=_utf16_key)
        return "{" + ",".join(jcs_string(k) + ":" + canonicalize(value[k])
                              for k in names) + "}"
    raise TypeError("not a JSON value: %r" % (value,))


# --------------------------------------------------------------------------
# Signatures (PROTOCOL.md section 4)


def sender_field(msg_type):
    return "nodeID" if msg_type == "hello" else "fromNodeID"


def canonical_unsigned(body):
    return canonicalize({k: v for k, v in body.items() if k != "signature"})


def signing_input(msg_type, body):
    """"rendezvous.v1/" || type || 0x00 || JCS(body without "signature")."""
    return (DOMAIN_PREFIX + msg_type.encode("utf-8") + b"\x00" +
            canonical_unsigned(body).encode("utf-8"))


def public_key_hex(seed_hex):
    sk = nacl.signing.SigningKey(bytes.fromhex(seed_hex))
    return sk.verify_key.encode().hex()


def sign_body(msg_type, body, seed_hex):
    """Returns a copy of body with "signature" set (last member)."""
    body = {k: v for k, v in body.items() if k != "signature"}
    sk = nacl.signing.SigningKey(bytes.fromhex(seed_hex))
    body["signature"] = sk.sign(signing_input(msg_type, body)).signature.hex()
    return body


def verify_body(msg_type, body):
    """True when body.signature is 128 lowercase hex digits and a valid
    Ed25519 signature, by the key its sender field names, of the signing
    input for msg_type. Freshness is not checked."""
    if msg_type not in SIGNED_TYPES or not isinstance(body, dict):
        return False
    sig = body.get("signature")
    key = body.get(sender_field(msg_type))
    if not isinstance(sig, str) or not HEX128.match(sig):
        return False
    if not isinstance(key, str) or not HEX64.match(key):
        return False
    try:
        data = signing_input(msg_type, body)
        nacl.signing.VerifyKey(bytes.fromhex(key)).verify(
            data, bytes.fromhex(sig))
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError,
            OverflowError):
        return False
    return True


def verify_message(envelope):
    """verify_body for a whole {"<type>": body} envelope."""
    if not isinstance(envelope, dict) or len(envelope) != 1:
        return False
    (msg_type, body), = envelope.items()
    return verify_body(msg_type, body)


# --------------------------------------------------------------------------
# Fixed material. A and B are the RFC 8032 section 7.1 test keys 2 and 1,
# C is test key 3. X25519 keys (e2eKey, wgPublicKey) are derived from fixed
# private keys. Nothing here is secret: these keys are published.

SEEDS = {
    "A": "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    "B": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    "C": "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
}
SEED_ORIGIN = {
    "A": "RFC 8032 section 7.1, TEST 2 secret key",
    "B": "RFC 8032 section 7.1, TEST 1 secret key",
    "C": "RFC 8032 section 7.1, TEST 3 secret key",
}
NODE = {name: public_key_hex(seed) for name, seed in SEEDS.items()}


def _fixed_hex(label, nbytes=32):
    return hashlib.sha256(label.encode("ascii")).digest()[:nbytes].hex()


def x25519_public(label):
    priv = bytes.fromhex(_fixed_hex("rendezvous.v1 example x25519 " + label))
    return nacl.public.PrivateKey(priv).public_key.encode().hex()


X25519_LABELS = ("wg A", "wg B", "e2e A offer", "e2e B answer",
                 "e2e A relay", "e2e B relay")
X25519 = {label: x25519_public(label) for label in X25519_LABELS}
NONCE = {name: _fixed_hex("rendezvous.v1 example nonce " + name)
         for name in ("A", "B", "V")}

T0 = 1767225600000  # 2026-01-01T00:00:00Z in ms
SERVER = "rdv.example.net"
SOFTWARE = "librendezvous/0.1.0"
# Fixed version-4 UUIDs (lowercase, version nibble 4, variant 8..b).
SESSION_SIGNAL = "6f9619ff-8b86-4d01-b42d-00cf4fc964ff"
SESSION_RELAY = "c56a4180-65aa-42ec-a945-5fd21dec0538"
SESSION_V = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"

INFO_A = {"publicIP": "203.0.113.5", "publicPort": 41641,
          "localIP": "10.0.0.5", "localPort": 51820, "natType": "symmetric",
          "wgPublicKey": X25519["wg A"]}
INFO_B = {"publicIP": "198.51.100.20", "publicPort": 51820,
          "localIP": "192.168.1.20", "localPort": 51820,
          "natType": "portRestricted", "wgPublicKey": X25519["wg B"]}
INFO_B6 = {"publicIP": "2001:db8:85a3::8a2e:370:7334", "publicPort": 51820,
           "localIP": "fd00::20", "localPort": 51820,
           "natType": "fullCone"}

# RFC 8445 5.1.2.1 priorities, component 1, local preference 65535.
PRIO_HOST = (1 << 24) * 126 + (1 << 8) * 65535 + (256 - 1)
PRIO_SRFLX = (1 << 24) * 100 + (1 << 8) * 65535 + (256 - 1)

# RFC 8785 appendix B: IEEE-754 bit patterns and their canonical text.
JCS_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def bits_to_double(bits_hex):
    return struct.unpack(">d", bytes.fromhex(bits_hex))[0]


# --------------------------------------------------------------------------
# signing.json


def _valid_case(name, description, msg_type, signer, body):
    body = sign_body(msg_type, body, SEEDS[signer])
    return {
        "name": name,
        "description": description,
        "type": msg_type,
        "signer": signer,
        "seed": SEEDS[signer],
        "public_key": NODE[signer],
        "message": {msg_type: body},
        "canonical": canonical_unsigned(body),
        "signing_input_hex": signing_input(msg_type, body).hex(),
        "signature": body["signature"],
    }


def _hello(name, ts, nonce, **extra):
    body = {"nodeID": NODE[name], "nonce": nonce, "server": SERVER,
            "timestamp": ts}
    body.update(extra)
    return body


def _signal(frm, to, session, ts, **extra):
    body = {"fromNodeID": NODE[frm], "toNodeID": NODE[to],
            "sessionID": session, "timestamp": ts}
    body.update(extra)
    return body


def build_signing():
    t = T0 + 60000
    valid = [
        _valid_case("hello_minimal", "hello with only the required fields",
                    "hello", "A", _hello("A", t, NONCE["V"])),
        _valid_case("hello_full", "hello with natType and software",
                    "hello", "B",
                    _hello("B", t + 1, NONCE["V"], natType="portRestricted",
                           software=SOFTWARE)),
        _valid_case("offer", "offer with connectionInfo (IPv4, wgPublicKey) "
                    "and e2eKey", "offer", "A",
                    _signal("A", "B", SESSION_V, t + 2,
                            connectionInfo=dict(INFO_A),
                            e2eKey=X25519["e2e A offer"])),
        _valid_case("answer", "answer echoing the offer's sessionID",
                    "answer", "B",
                    _signal("B", "A", SESSION_V, t + 3,
                            connectionInfo=dict(INFO_B),
                            e2eKey=X25519["e2e B answer"])),
        _valid_case("answer_ipv6", "answer whose connectionInfo has IPv6 "
                    "addresses and no optional members", "answer", "B",
                    _signal("B", "A", SESSION_V, t + 4,
                            connectionInfo=dict(INFO_B6))),
        _valid_case("iceCandidate_host_ipv4", "host candidate, IPv4",
                    "iceCandidate", "A",
                    _signal("A", "B", SESSION_V, t + 5, candidate={
                        "ip": "10.0.0.5", "port": 51820, "type": "host",
                        "priority": PRIO_HOST, "foundation": "1"})),
        _valid_case("iceCandidate_srflx_ipv6", "server-reflexive candidate, "
                    "IPv6, with relatedIP/relatedPort", "iceCandidate", "B",
                    _signal("B", "A", SESSION_V, t + 6, candidate={
                        "ip": "2001:db8:85a3::8a2e:370:7334", "port": 51820,
                        "type": "serverReflexive", "priority": PRIO_SRFLX,
                        "foundation": "2", "relatedIP": "fd00::20",
                        "relatedPort": 51820})),
        _valid_case("relayOpen", "relayOpen with e2eKey", "relayOpen", "A",
                    _signal("A", "B", SESSION_RELAY, t + 7,
                            e2eKey=X25519["e2e A relay"])),
        _valid_case("relayReady", "relayReady without e2eKey", "relayReady",
                    "B", _signal("B", "A", SESSION_RELAY, t + 8)),
        _valid_case("offer_unknown_fields", "unknown fields at the top of "
                    "the body and inside connectionInfo: kept and signed",
                    "offer", "A",
                    _signal("A", "B", SESSION_V, t + 9,
                            connectionInfo=dict(INFO_A, mtu=1420,
                                                relayHint=["eu-1", "us-2"]),
                            zFuture={"enabled": True, "level": 3,
                                     "list": [None, False, "x"]},
                            aFeature="draft-2")),
        _valid_case("offer_awkward_values", "non-ASCII strings, control "
                    "characters, keys that sort differently by UTF-16 code "
                    "unit than by code point, and numbers whose ECMAScript "
                    "form differs from their wire form, all in unknown fields",
                    "offer", "A",
                    _signal("A", "B", SESSION_V, t + 10,
                            connectionInfo=dict(INFO_B6),
                            note="Grüße aus Zürich, 東京 😀 \u20ac",
                            escapes="quote\" backslash\\ slash/ tab\t nl\n "
                                    "cr\r ff\f bs\b nul-free\u0001\u001f "
                                    "del\u007f nbsp\u00a0 ls\u2028",
                            numbers={
                                "big": RawNumber("1E21"),
                                "small": RawNumber("0.000001"),
                                "tiny": RawNumber("1e-7"),
                                "third": RawNumber("333333333.33333329"),
                                "one": RawNumber("1.0"),
                                "negzero": RawNumber("-0.0"),
                                "hundredths": RawNumber("100e-2"),
                                "neg": RawNumber("-1.5e3"),
                                "e23": RawNumber("1e23"),
                                "frac": RawNumber("1424953923781206.25"),
                                "maxsafe": 9007199254740991},
                            sortKeys={"\u20ac": "Euro Sign",
                                      "\r": "Carriage Return",
                                      "\ufb33": "Hebrew Letter Dalet With "
                                                "Dagesh",
                                      "1": "One",
                                      "\U0001F600": "Emoji: Grinning Face",
                                      "\u0080": "Control",
                                      "\u00f6": "Latin Small Letter O With "
                                                "Diaeresis"})),
        _valid_case("offer_big_integer", "an integer above 2^53 in an "
                    "unknown field: JCS treats it as the nearest double "
                    "(9007199254740993 -> 9007199254740992)", "offer", "A",
                    _signal("A", "B", SESSION_V, t + 11,
                            connectionInfo=dict(INFO_A),
                            counter=9007199254740993)),
        _valid_case("hello_cert", "hello carrying a fleet certificate "
                    "(section 6.1): the hello signature covers it",
                    "hello", "A",
                    _hello("A", t + 12, NONCE["V"], software=SOFTWARE,
                           cert=fleet_cert("F1", "A", _fixed_hex(
                               "rendezvous.v1 example serial 1", 16), T0,
                               T0 + 90 * 86400 * 1000, ["relay"]))),
    ]

    base_offer = valid[2]["message"]["offer"]
    bad = []

    def bad_case(name, msg_type, body, reason, schema_valid=True):
        bad.append({"name": name, "type": msg_type,
                    "message": {msg_type: body}, "reason": reason,
                    "schema_valid": schema_valid})

    b = copy.deepcopy(base_offer)
    b["connectionInfo"]["publicPort"] = 41642
    bad_case("offer_field_changed", "offer", b, "connectionInfo.publicPort "
             "changed after signing")
    b = copy.deepcopy(base_offer)
    b["timestamp"] += 1
    bad_case("offer_timestamp_changed", "offer", b, "timestamp changed after "
             "signing")
    b = copy.deepcopy(valid[9]["message"]["offer"])
    del b["aFeature"]
    bad_case("offer_unknown_field_removed", "offer", b, "an unknown field "
             "removed after signing (unknown fields are signed)")
    b = copy.deepcopy(base_offer)
    b["extra"] = 1
    bad_case("offer_unknown_field_added", "offer", b, "an unknown field added "
             "after signing")
    bad_case("offer_as_answer", "answer", copy.deepcopy(base_offer),
             "the signature of an offer presented as an answer (domain tag)")
    b = copy.deepcopy(valid[0]["message"]["hello"])
    b["nonce"] = NONCE["A"]
    bad_case("hello_nonce_changed", "hello", b, "nonce changed after signing")
    b = sign_body("offer", {k: v for k, v in base_offer.items()}, SEEDS["C"])
    bad_case("offer_wrong_key", "offer", b, "signed by key C, but fromNodeID "
             "names A")
    b = copy.deepcopy(base_offer)
    b["signature"] = b["signature"][:126]
    bad_case("offer_truncated_signature", "offer", b, "signature truncated to "
             "63 bytes (126 hex digits)", schema_valid=False)
    b = copy.deepcopy(base_offer)
    b["signature"] = b["signature"].upper()
    bad_case("offer_uppercase_signature", "offer", b, "the valid signature in "
             "uppercase hex: Signature is lowercase hex only",
             schema_valid=False)
    # Signing the wrong bytes: a non-canonical serialisation, or no tag.
    sk = nacl.signing.SigningKey(bytes.fromhex(SEEDS["A"]))
    b = {k: v for k, v in base_offer.items() if k != "signature"}
    raw = json.dumps(b, separators=(",", ":")).encode("utf-8")
    b["signature"] = sk.sign(DOMAIN_PREFIX + b"offer\x00" + raw).signature.hex()
    bad_case("offer_noncanonical_input", "offer", b, "signed over the members "
             "in wire order instead of JCS order")
    b = {k: v for k, v in base_offer.items() if k != "signature"}
    b["signature"] = sk.sign(canonical_unsigned(b).encode()).signature.hex()
    bad_case("offer_no_domain_tag", "offer", b, "signed over JCS(body) "
             "without the \"rendezvous.v1/offer\\0\" prefix")

    return {
        "description": "Ed25519 signing vectors for rendezvous wire protocol "
                       "v1 (schema/PROTOCOL.md section 4), written by "
                       "schema/vectors/make_vectors.py. signing input = "
                       "\"rendezvous.v1/\" || type || 0x00 || JCS(body "
                       "without \"signature\"). Every 'valid' message "
                       "verifies with the key its sender field names; every "
                       "'invalid' message must fail verification "
                       "(schema_valid tells whether it still passes the "
                       "JSON Schema). Timestamps are fixed, so freshness "
                       "is not part of these vectors.",
        "domain_prefix": DOMAIN_PREFIX.decode(),
        "keys": [{"name": n, "origin": SEED_ORIGIN[n], "seed": SEEDS[n],
                  "public_key": NODE[n]} for n in sorted(SEEDS)],
        "valid": valid,
        "invalid": bad,
        "jcs_numbers": [{"bits": bits, "canonical": text}
                        for bits, text in JCS_NUMBERS],
    }


# --------------------------------------------------------------------------
# example.json (PROTOCOL.md section 12)


def build_example():
    steps = []

    def step(direction, caption, msg_type, body, signer=None):
        if signer:
            body = sign_body(msg_type, body, SEEDS[signer])
        entry = {"step": len(steps) + 1, "direction": direction,
                 "caption": caption, "message": {msg_type: body}}
        if signer:
            entry["signedBy"] = signer
        steps.append(entry)

    a, b = NODE["A"], NODE["B"]
    step("S → A", "A connects; the server sends a fresh nonce.", "challenge",
         {"nonce": NONCE["A"], "server": SERVER, "version": 1,
          "serverTime": T0})
    step("A → S", "A proves its identity: the nonce and server name are "
         "copied from the challenge and signed with A's key.", "hello",
         _hello("A", T0 + 120, NONCE["A"], natType="symmetric",
                software=SOFTWARE), "A")
    step("S → A", "A is authenticated; the server reports the address it "
         "sees and the limits in force (the defaults).", "welcome",
         {"nodeID": a, "observedIP": "203.0.113.5", "observedPort": 41641,
          "serverTime": T0 + 135,
          "limits": {"maxMessageBytes": 65536, "messagesPerSecond": 50,
                     "messageBurst": 100, "offlineTtlMs": 60000,
                     "offlineQueueMax": 64, "maxWatches": 1024,
                     "pingIntervalMs": 20000, "idleTimeoutMs": 60000,
                     "freshPastMs": 120000, "freshFutureMs": 30000,
                     "maxRelaySessions": 8, "maxRelayPayload": 16384,
                     "relayBytesPerSecond": 0, "relayChannel": 1}})
    step("S → B", "B connects on its own WebSocket and gets its own nonce.",
         "challenge", {"nonce": NONCE["B"], "server": SERVER, "version": 1,
                       "serverTime": T0 + 2000})
    step("B → S", "B authenticates (no optional fields this time).", "hello",
         _hello("B", T0 + 2110, NONCE["B"], natType="portRestricted"), "B")
    step("S → B", "B is authenticated; the server sees it over IPv6. "
         "`limits` shows only the required members.", "welcome",
         {"nodeID": b, "observedIP": "2001:db8:85a3::8a2e:370:7334",
          "observedPort": 52110, "serverTime": T0 + 2125,
          "limits": {"maxMessageBytes": 65536, "messagesPerSecond": 50,
                     "messageBurst": 100, "offlineTtlMs": 60000,
                     "offlineQueueMax": 64, "maxWatches": 1024,
                     "pingIntervalMs": 20000, "idleTimeoutMs": 60000}})
    step("A → S", "A asks whether B is online.", "lookup",
         {"nodeIDs": [b], "requestID": "q-1"})
    step("S → A", "B is online; its NAT type is the one from its hello.",
         "presence", {"requestID": "q-1", "peers": [
             {"nodeID": b, "online": True, "lastSeen": T0 + 2125,
              "natType": "portRestricted"}]})
    step("A → S → B", "A offers a session to B. The server checks sender, "
         "timestamp and signature, then forwards the original bytes to B.",
         "offer", _signal("A", "B", SESSION_SIGNAL, T0 + 5000,
                          connectionInfo=dict(INFO_A),
                          e2eKey=X25519["e2e A offer"]), "A")
    step("B → S → A", "B answers with the same sessionID.", "answer",
         _signal("B", "A", SESSION_SIGNAL, T0 + 5210,
                 connectionInfo=dict(INFO_B),
                 e2eKey=X25519["e2e B answer"]), "B")
    step("A → S → B", "A trickles a host candidate.", "iceCandidate",
         _signal("A", "B", SESSION_SIGNAL, T0 + 5300, candidate={
             "ip": "10.0.0.5", "port": 51820, "type": "host",
             "priority": PRIO_HOST, "foundation": "1"}), "A")
    step("B → S → A", "B trickles a server-reflexive IPv6 candidate.",
         "iceCandidate",
         _signal("B", "A", SESSION_SIGNAL, T0 + 5320, candidate={
             "ip": "2001:db8:85a3::8a2e:370:7334", "port": 51820,
             "type": "serverReflexive", "priority": PRIO_SRFLX,
             "foundation": "2", "relatedIP": "fd00::20",
             "relatedPort": 51820}), "B")
    step("A → S → B", "A's NAT is symmetric and no pair connects, so A "
         "opens a relay session with a new sessionID (state OPENING).",
         "relayOpen", _signal("A", "B", SESSION_RELAY, T0 + 9000,
                              e2eKey=X25519["e2e A relay"]), "A")
    step("B → S → A", "B consents; the session is OPEN.", "relayReady",
         _signal("B", "A", SESSION_RELAY, T0 + 9150,
                 e2eKey=X25519["e2e B relay"]), "B")
    step("A → S → B", "A sends data in the text form (base64; the client "
         "library would send ciphertext, plain bytes are shown here).",
         "relayData", {"sessionID": SESSION_RELAY,
                       "data": base64.b64encode(b"hello B, this is A")
                       .decode("ascii")})
    step("A → S → B", "A closes the session; the server forwards the close "
         "to B and forgets the session.", "relayClose",
         {"sessionID": SESSION_RELAY, "reason": "done"})
    step("A → S", "A sends data on the closed session by mistake...",
         "relayData", {"sessionID": SESSION_RELAY,
                       "data": base64.b64encode(b"late").decode("ascii")})
    step("S → A", "...and gets an error; the connection stays open.", "error",
         {"code": "unknown_session", "message": "no relay session with this "
          "sessionID; open one with relayOpen", "ref": SESSION_RELAY,
          "type": "relayData"})

    return {
        "description": "The complete example exchange of schema/PROTOCOL.md "
                       "section 12, written by schema/vectors/make_vectors.py. "
                       "Signed messages are really signed with the keys "
                       "below; timestamps are fixed (T0 = 2026-01-01T00:00:00Z)"
                       ", so they verify but are not fresh.",
        "server": SERVER,
        "keys": [{"name": n, "origin": SEED_ORIGIN[n], "seed": SEEDS[n],
                  "public_key": NODE[n]} for n in ("A", "B")],
        "messages": steps,
    }


# --------------------------------------------------------------------------
# fleet.json (PROTOCOL.md section 6.1): fleet certificates

FLEET_TAG = "fleetCert"
FLEET_SKEW_MS = 30000  # the server's ingress window, also for certificates
SERIAL_RE = re.compile(r"\A[0-9a-f]{32}\Z")
GROUP_RE = re.compile(r"\A[A-Za-z0-9_.-]{1,32}\Z")
MAX_SAFE = 2 ** 53 - 1
# F1 and F2 are trusted (a rotation: both configured), F3 is not.
FLEET_SEEDS = {n: _fixed_hex("rendezvous.v1 example fleet key " + n)
               for n in ("F1", "F2", "F3")}
FLEET_KEY = {n: public_key_hex(seed) for n, seed in FLEET_SEEDS.items()}
FLEET_TRUSTED = ("F1", "F2")


def fleet_signing_input(cert, tag=FLEET_TAG):
    return (DOMAIN_PREFIX + tag.encode("utf-8") + b"\x00" +
            canonical_unsigned(cert).encode("utf-8"))


def fleet_cert(signer, node, serial, not_before, expires, groups=None,
               tag=FLEET_TAG, key_of=None, **extra):
    """A certificate signed with fleet key `signer` (its fleetKey names
    key_of, by default the signer) over the domain tag `tag`."""
    cert = {"type": "fleetCert", "v": 1, "nodeID": NODE[node],
            "serial": serial, "notBefore": not_before, "expires": expires,
            "fleetKey": FLEET_KEY[key_of or signer]}
    if groups is not None:
        cert["groups"] = list(groups)
    cert.update(extra)
    sk = nacl.signing.SigningKey(bytes.fromhex(FLEET_SEEDS[signer]))
    cert["signature"] = sk.sign(fleet_signing_input(cert, tag)).signature.hex()
    return cert


def _int_in(v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    if isinstance(v, float) and not v.is_integer():
        return False
    return lo <= v <= hi


def fleet_cert_shape(cert):
    """The first malformed field of cert, or None (PROTOCOL.md 6.1)."""
    if not isinstance(cert, dict):
        return "cert"
    if cert.get("type") != "fleetCert":
        return "type"
    if not _int_in(cert.get("v"), 1, 1):
        return "v"
    if not isinstance(cert.get("nodeID"), str) or \
            not HEX64.match(cert["nodeID"]):
        return "nodeID"
    if not isinstance(cert.get("serial"), str) or \
            not SERIAL_RE.match(cert["serial"]):
        return "serial"
    if not _int_in(cert.get("notBefore"), 1, MAX_SAFE):
        return "notBefore"
    if not _int_in(cert.get("expires"), 1, MAX_SAFE) or \
            cert["expires"] < cert["notBefore"]:
        return "expires"
    if "groups" in cert:
        g = cert["groups"]
        if not isinstance(g, list) or len(g) > 16 or \
                not all(isinstance(x, str) and GROUP_RE.match(x) for x in g) \
                or len(set(g)) != len(g):
            return "groups"
    if not isinstance(cert.get("fleetKey"), str) or \
            not HEX64.match(cert["fleetKey"]):
        return "fleetKey"
    if not isinstance(cert.get("signature"), str) or \
            not HEX128.match(cert["signature"]):
        return "signature"
    return None


def verify_fleet_cert(cert, trusted_keys, node_id, now, skew=FLEET_SKEW_MS):
    """The outcome of the server's check, in the order of PROTOCOL.md 6.1:
    "ok", "malformed", "unknown_fleet_key", "bad_signature", "wrong_node",
    "not_yet_valid" or "expired"."""
    if fleet_cert_shape(cert) is not None:
        return "malformed"
    if cert["fleetKey"] not in trusted_keys:
        return "unknown_fleet_key"
    try:
        nacl.signing.VerifyKey(bytes.fromhex(cert["fleetKey"])).verify(
            fleet_signing_input(cert), bytes.fromhex(cert["signature"]))
    except (nacl.exceptions.BadSignatureError, ValueError):
        return "bad_signature"
    if cert["nodeID"] != node_id:
        return "wrong_node"
    if now < cert["notBefore"] - skew:
        return "not_yet_valid"
    if now > cert["expires"] + skew:
        return "expired"
    return "ok"


def build_fleet():
    nb = T0
    exp = T0 + 90 * 86400 * 1000
    mid = T0 + 86400 * 1000
    ser = {n: _fixed_hex("rendezvous.v1 example serial " + n, 16)
           for n in ("1", "2", "3", "4")}
    cases = []

    def case(name, description, cert, node, now, expect, schema_valid=True):
        cases.append({"name": name, "description": description,
                      "cert": cert, "node": NODE[node], "now": now,
                      "expect": expect, "schema_valid": schema_valid})

    minimal = fleet_cert("F1", "A", ser["1"], nb, exp)
    grouped = fleet_cert("F2", "B", ser["2"], nb, exp, ["relay", "ops-eu.1"])
    case("minimal", "no groups, signed by trusted key F1", minimal, "A", mid,
         "ok")
    case("groups_rotated_key", "two groups, signed by F2 (the second trusted "
         "key: rotation)", grouped, "B", mid, "ok")
    case("unknown_field", "an unknown member is allowed and signed",
         fleet_cert("F1", "A", ser["3"], nb, exp, ["relay"], note="lab"),
         "A", mid, "ok")
    case("edge_not_before", "now = notBefore - 30 s: still valid (skew)",
         minimal, "A", nb - FLEET_SKEW_MS, "ok")
    case("edge_expires", "now = expires + 30 s: still valid (skew)", minimal,
         "A", exp + FLEET_SKEW_MS, "ok")
    case("not_yet_valid", "now = notBefore - 30 s - 1 ms", minimal, "A",
         nb - FLEET_SKEW_MS - 1, "not_yet_valid")
    case("expired", "now = expires + 30 s + 1 ms", minimal, "A",
         exp + FLEET_SKEW_MS + 1, "expired")
    case("wrong_node", "A's certificate presented by B", minimal, "B", mid,
         "wrong_node")
    case("untrusted_key", "signed by F3, which the server does not trust",
         fleet_cert("F3", "A", ser["4"], nb, exp), "A", mid,
         "unknown_fleet_key")
    case("fleet_key_swapped", "signed by F3 but fleetKey names trusted F1",
         fleet_cert("F3", "A", ser["4"], nb, exp, key_of="F1"), "A", mid,
         "bad_signature")
    c = copy.deepcopy(grouped)
    c["groups"].append("admin")
    case("tampered_groups", "a group added after signing", c, "B", mid,
         "bad_signature")
    c = copy.deepcopy(minimal)
    c["expires"] += 86400000
    case("tampered_expires", "expires moved after signing", c, "A", mid,
         "bad_signature")
    case("signed_as_hello", "the certificate body signed under the hello "
         "domain tag instead of fleetCert",
         fleet_cert("F1", "A", ser["1"], nb, exp, tag="hello"), "A", mid,
         "bad_signature")
    c = {k: v for k, v in minimal.items() if k != "signature"}
    sk = nacl.signing.SigningKey(bytes.fromhex(FLEET_SEEDS["F1"]))
    c["signature"] = sk.sign(canonical_unsigned(c).encode()).signature.hex()
    case("no_domain_tag", "signed over JCS(cert) without the tag", c, "A",
         mid, "bad_signature")
    c = copy.deepcopy(minimal)
    c["serial"] = c["serial"].upper()
    case("serial_uppercase", "serial in uppercase hex", c, "A", mid,
         "malformed", schema_valid=False)
    c = copy.deepcopy(minimal)
    c["v"] = 2
    case("version_2", "v is not 1", c, "A", mid, "malformed",
         schema_valid=False)
    c = copy.deepcopy(grouped)
    c["groups"] = ["g%d" % i for i in range(17)]
    case("too_many_groups", "17 groups", c, "B", mid, "malformed",
         schema_valid=False)
    c = copy.deepcopy(grouped)
    c["groups"] = ["relay", "relay"]
    case("duplicate_group", "the same group twice", c, "B", mid, "malformed",
         schema_valid=False)
    c = copy.deepcopy(minimal)
    c["type"] = "hello"
    case("wrong_type", "type is not fleetCert", c, "A", mid, "malformed",
         schema_valid=False)
    c = copy.deepcopy(minimal)
    del c["serial"]
    case("missing_serial", "no serial", c, "A", mid, "malformed",
         schema_valid=False)
    c = fleet_cert("F1", "A", ser["1"], exp, nb)
    case("expires_before_not_before", "expires < notBefore", c, "A", mid,
         "malformed", schema_valid=True)
    return {
        "description": "Fleet certificate vectors for rendezvous wire "
                       "protocol v1 (schema/PROTOCOL.md section 6.1), written "
                       "by schema/vectors/make_vectors.py. signing input = "
                       "\"rendezvous.v1/fleetCert\" || 0x00 || JCS(cert "
                       "without \"signature\"). A server that trusts the "
                       "keys marked trusted, checking case.cert for node "
                       "case.node at time case.now (ms) with a skew of "
                       "skew_ms, reaches case.expect (schema_valid tells "
                       "whether the certificate passes the JSON Schema).",
        "domain_tag": DOMAIN_PREFIX.decode() + FLEET_TAG,
        "skew_ms": FLEET_SKEW_MS,
        "keys": [{"name": n, "seed": FLEET_SEEDS[n],
                  "public_key": FLEET_KEY[n],
                  "trusted": n in FLEET_TRUSTED} for n in sorted(FLEET_SEEDS)],
        "cases": cases,
    }


# --------------------------------------------------------------------------
# Output


_RAW_MARK = "\u0000RAW:"
_RAW_RE = re.compile(r'"\\u0000RAW:([-+.0-9eE]+)"')


def _raw_default(obj):
    if isinstance(obj, RawNumber):
        return _RAW_MARK + obj.text
    raise TypeError("not JSON serialisable: %r" % (obj,))


def render(obj, indent=2):
    """JSON text of obj; RawNumbers appear exactly as spelt."""
    text = json.dumps(obj, indent=indent, ensure_ascii=False,
                      default=_raw_default)
    return _RAW_RE.sub(lambda m: m.group(1), text)


def markdown(example):
    """The body of PROTOCOL.md section 12 (everything after its intro)."""
    out = []

    def w(line):
        out.append(line)

    def wp(text):  # a prose paragraph, wrapped like the rest of the file
        out.append(textwrap.fill(text, width=76, break_long_words=False,
                                 break_on_hyphens=False))

    wp("On the wire every message below is one compact JSON text frame; here "
      "each is pretty-printed for reading. Signatures are computed over the "
      "canonical form (section 4), so whitespace and member order on the "
      "wire do not matter. The server forwards routed messages (`A → S → B`) "
      "byte for byte.")
    w("")
    wp("Keys used (published test keys from RFC 8032 section 7.1; never use "
      "them for anything real). The Ed25519 seed is the 32-byte secret key "
      "of RFC 8032; the node ID is its public key.")
    w("")
    w("| node | Ed25519 seed (RFC 8032 secret key) | node ID (public key) |")
    w("|---|---|---|")
    for k in example["keys"]:
        origin = k["origin"].split(", ")[1].replace("TEST", "test")
        w("| %s | `%s` (%s) | `%s` |" % (k["name"], k["seed"], origin,
                                         k["public_key"]))
    w("")
    wp("Times are fixed: T0 = `%d` (2026-01-01T00:00:00Z), so the "
       "signatures verify but the timestamps are long stale. Server name "
       "`%s`." % (T0, SERVER))
    w("")
    for s in example["messages"]:
        (mtype, _), = s["message"].items()
        signed = " (signed by %s)" % s["signedBy"] if "signedBy" in s else ""
        wp("**%d. %s `%s`**%s — %s" % (s["step"], s["direction"], mtype,
                                     signed, s["caption"]))
        w("")
        w("```json")
        w(render(s["message"]))
        w("```")
        w("")
    # Signing input of the offer.
    offer = next(s for s in example["messages"] if "offer" in s["message"])
    body = offer["message"]["offer"]
    data = signing_input("offer", body)
    canon = len(canonical_unsigned(body).encode("utf-8"))
    wp("**Reproducing a signature.** The signing input of the `offer` in "
      "step %d is the ASCII tag `rendezvous.v1/offer`, one zero byte, and "
      "the RFC 8785 canonical form of the body without `signature` (members "
      "sorted, no whitespace; %d bytes). With the %d-byte tag and the zero "
      "byte the signing input is %d bytes:"
      % (offer["step"], canon, len("rendezvous.v1/offer"), len(data)))
    w("")
    w("```text")
    w("rendezvous.v1/offer")
    w("<0x00>")
    w(canonical_unsigned(body))
    w("```")
    w("")
    wp("(three lines here for reading; the input has no line breaks: tag, "
      "0x00, canonical text, back to back). In hex it starts `%s…`; its "
      "SHA-256 is `%s`. Ed25519 with node A's seed over these bytes gives the "
      "`signature` shown in step %d. `schema/vectors/signing.json` has "
      "more cases, including unknown fields, non-ASCII text, awkward numbers "
      "and messages that must fail verification."
      % (data[:24].hex(), hashlib.sha256(data).hexdigest(), offer["step"]))
    return "\n".join(out) + "\n"


def self_check_fleet(fleet):
    trusted = [k["public_key"] for k in fleet["keys"] if k["trusted"]]
    fleet = json.loads(render(fleet))
    for c in fleet["cases"]:
        got = verify_fleet_cert(c["cert"], trusted, c["node"], c["now"],
                                fleet["skew_ms"])
        if got != c["expect"]:
            raise AssertionError("fleet case %s: %s, want %s"
                                 % (c["name"], got, c["expect"]))


def self_check(signing, example):
    """Internal consistency: the formatter matches RFC 8785 appendix B,
    every valid vector (as read back from its JSON text) verifies and every
    invalid one does not."""
    for bits, text in JCS_NUMBERS:
        got = jcs_number(bits_to_double(bits))
        if got != text:
            raise AssertionError("jcs_number(%s) = %s, want %s"
                                 % (bits, got, text))
    signing = json.loads(render(signing))
    example = json.loads(render(example))
    for case in signing["valid"]:
        if not verify_message(case["message"]):
            raise AssertionError("valid case %s does not verify"
                                 % case["name"])
        body = case["message"][case["type"]]
        if canonical_unsigned(body) != case["canonical"]:
            raise AssertionError("case %s: canonical form changes when read "
                                 "back" % case["name"])
    for case in signing["invalid"]:
        if verify_message(case["message"]):
            raise AssertionError("invalid case %s verifies" % case["name"])
    for step in example["messages"]:
        (mtype, _), = step["message"].items()
        if mtype in SIGNED_TYPES and not verify_message(step["message"]):
            raise AssertionError("example step %d does not verify"
                                 % step["step"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--check", action="store_true",
                   help="compare with the files on disk; exit 1 on difference")
    g.add_argument("--markdown", action="store_true",
                   help="print the body of PROTOCOL.md section 12")
    args = ap.parse_args(argv)
    example = build_example()
    if args.markdown:
        sys.stdout.write(markdown(example))
        return 0
    signing = build_signing()
    self_check(signing, example)
    fleet = build_fleet()
    self_check_fleet(fleet)
    files = {SIGNING_FILE: render(signing) + "\n",
             EXAMPLE_FILE: render(example) + "\n",
             FLEET_FILE: render(fleet) + "\n"}
    if args.check:
        status = 0
        for path, text in files.items():
            try:
                with open(path, encoding="utf-8") as f:
                    on_disk = f.read()
            except OSError as e:
                print("%s: %s" % (path, e), file=sys.stderr)
                status = 1
                continue
            if on_disk != text:
                print("%s is out of date: run %s" % (path, sys.argv[0]),
                      file=sys.stderr)
                status = 1
        return status
    for path, text in files.items():
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        print("wrote %s" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
