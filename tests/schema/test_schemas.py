#!/usr/bin/python3
"""test_schemas.py - keeps PROTOCOL.md, the JSON Schemas and the signing
vectors in agreement.

Usage: test_schemas.py PROJECT_SOURCE_DIR [unittest options]

Checks:
  - every schema/json/*.schema.json is a valid draft 2020-12 schema, one
    per message type of PROTOCOL.md section 5 plus common.schema.json;
  - every ```json block of PROTOCOL.md that is a message (blocks with "…"
    placeholders are skipped) validates against its type's schema, and its
    signature verifies when the type is signed; section 12 shows exactly
    the messages of schema/vectors/example.json;
  - every message of schema/vectors/signing.json and example.json
    validates (the invalid vectors that are marked schema_valid=false must
    not); signing.json and example.json are up to date
    (make_vectors.py --check);
  - the independent Python verifier accepts the valid vectors and rejects
    the invalid ones;
  - a set of broken messages is rejected by the schemas (format checking
    is on), and unknown body fields are accepted.

Exits non-zero on any failure; the last line is a summary.
"""

import copy
import glob
import json
import os
import re
import subprocess
import sys
import unittest

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker

if len(sys.argv) < 2 or not os.path.isdir(sys.argv[1]):
    sys.stderr.write("usage: %s PROJECT_SOURCE_DIR [unittest options]\n"
                     % sys.argv[0])
    sys.exit(2)
ROOT = os.path.abspath(sys.argv.pop(1))
SCHEMA_DIR = os.path.join(ROOT, "schema", "json")
VECTOR_DIR = os.path.join(ROOT, "schema", "vectors")
PROTOCOL = os.path.join(ROOT, "schema", "PROTOCOL.md")
BASE_URI = "https://rendezvous.invalid/schema/v1/"

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, VECTOR_DIR)
import make_vectors  # noqa: E402

TYPES = ("challenge", "hello", "welcome", "offer", "answer", "iceCandidate",
         "relayOpen", "relayReady", "relayData", "relayClose", "lookup",
         "presence", "watch", "unwatch", "peerOnline", "peerOffline",
         "queued", "error", "ping", "pong")
SIGNED = ("hello", "offer", "answer", "iceCandidate", "relayOpen",
          "relayReady")

CHECKS = 0


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_schemas():
    schemas = {}
    for path in sorted(glob.glob(os.path.join(SCHEMA_DIR, "*.schema.json"))):
        schemas[os.path.basename(path)] = load_json(path)
    return schemas


def no_network(uri):
    raise jsonschema.exceptions.RefResolutionError(
        "refusing to fetch %s: every $ref must resolve locally" % uri)


def validator_factory(schemas):
    """Returns make(schema) -> Draft202012Validator with a local registry of
    all schema files and format checking enabled."""
    fmt = FormatChecker()
    try:
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012
    except ImportError:
        store = {s["$id"]: s for s in schemas.values()}

        def make(schema):
            resolver = jsonschema.RefResolver(
                base_uri=schema["$id"], referrer=schema, store=store,
                handlers={"http": no_network, "https": no_network})
            return Draft202012Validator(schema, resolver=resolver,
                                        format_checker=fmt)
        return make
    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(
            s, default_specification=DRAFT202012))
        for s in schemas.values())

    def make(schema):
        return Draft202012Validator(schema, registry=registry,
                                    format_checker=fmt)
    return make


SCHEMAS = load_schemas()
MAKE = validator_factory(SCHEMAS)
VALIDATORS = {t: MAKE(SCHEMAS[t + ".schema.json"]) for t in TYPES
              if t + ".schema.json" in SCHEMAS}
SIGNING = load_json(os.path.join(VECTOR_DIR, "signing.json"))
EXAMPLE = load_json(os.path.join(VECTOR_DIR, "example.json"))
FLEET = load_json(os.path.join(VECTOR_DIR, "fleet.json"))
FLEET_VALIDATOR = MAKE(SCHEMAS["fleetCert.schema.json"])


def msg_type(msg):
    if isinstance(msg, dict) and len(msg) == 1:
        return next(iter(msg))
    return None


def schema_errors(msg):
    """Validation errors of msg against its type's schema (a list of
    strings, empty when valid). A message of no known type is checked
    against every schema and must fail them all to count as invalid."""
    t = msg_type(msg)
    if t in VALIDATORS:
        return [e.message for e in VALIDATORS[t].iter_errors(msg)]
    for name, v in VALIDATORS.items():
        if v.is_valid(msg):
            return []
    return ["no schema accepts it"]


def markdown_json_blocks(text):
    """(offset, source) of every ```json fenced block."""
    return [(m.start(), m.group(1)) for m in
            re.finditer(r"^```json[ \t]*\n(.*?)^```[ \t]*$", text,
                        re.M | re.S)]


class Checked(unittest.TestCase):
    def passed(self):
        global CHECKS
        CHECKS += 1


class SchemaFiles(Checked):
    def test_one_file_per_type(self):
        want = {t + ".schema.json" for t in TYPES} | {"common.schema.json",
                                                       "fleetCert.schema.json"}
        self.assertEqual(set(SCHEMAS), want)
        self.passed()

    def test_files_are_valid_2020_12_schemas(self):
        for name, schema in SCHEMAS.items():
            with self.subTest(schema=name):
                self.assertEqual(
                    schema.get("$schema"),
                    "https://json-schema.org/draft/2020-12/schema")
                self.assertEqual(schema.get("$id"), BASE_URI + name)
                Draft202012Validator.check_schema(schema)
                self.passed()

    def test_envelopes(self):
        for t in TYPES:
            with self.subTest(type=t):
                s = SCHEMAS[t + ".schema.json"]
                self.assertEqual(s.get("type"), "object")
                self.assertEqual(s.get("required"), [t])
                self.assertEqual(list(s.get("properties", {})), [t])
                self.assertIs(s.get("additionalProperties"), False)
                self.passed()

    def test_common_defs(self):
        defs = SCHEMAS["common.schema.json"].get("$defs", {})
        for name in ("NodeID", "SessionID", "Timestamp", "Signature", "Nonce",
                     "Key32", "IP", "Port", "NatType", "RequestID", "Text",
                     "connectionInfo", "candidate"):
            with self.subTest(name=name):
                self.assertIn(name, defs)
                self.passed()


class ProtocolDocument(Checked):
    @classmethod
    def setUpClass(cls):
        with open(PROTOCOL, encoding="utf-8") as f:
            cls.text = f.read()
        cls.blocks = markdown_json_blocks(cls.text)
        m = re.search(r"^## 12\.", cls.text, re.M)
        cls.sec12 = m.start() if m else None

    def test_placeholder_replaced(self):
        self.assertNotIn("EXAMPLE-PLACEHOLDER", self.text)
        self.assertIsNotNone(self.sec12, "no section 12 in PROTOCOL.md")
        self.passed()

    def test_json_blocks_validate_and_verify(self):
        messages = 0
        for offset, src in self.blocks:
            line = self.text.count("\n", 0, offset) + 1
            if "…" in src:
                continue
            with self.subTest(line=line):
                msg = json.loads(src)
                t = msg_type(msg)
                if t is None or not isinstance(msg[t], dict):
                    continue  # not a message
                messages += 1
                self.assertIn(t, VALIDATORS, "unknown message type %r" % t)
                self.assertEqual(schema_errors(msg), [])
                if t in SIGNED:
                    self.assertTrue(make_vectors.verify_message(msg),
                                    "signature does not verify")
                self.passed()
        self.assertGreater(messages, 0)

    def test_section12_is_example_json(self):
        doc = [json.loads(src) for off, src in self.blocks
               if off > self.sec12]
        want = [s["message"] for s in EXAMPLE["messages"]]
        self.assertEqual(doc, want, "section 12 differs from example.json: "
                         "run make_vectors.py --markdown")
        self.passed()

    def test_section12_signing_input(self):
        m = re.search(r"^```text\nrendezvous\.v1/offer\n<0x00>\n(.*)\n```$",
                      self.text[self.sec12:], re.M)
        self.assertIsNotNone(m, "no signing-input example in section 12")
        offer = next(s["message"]["offer"] for s in EXAMPLE["messages"]
                     if "offer" in s["message"])
        self.assertEqual(m.group(1), make_vectors.canonical_unsigned(offer))
        self.passed()


class Vectors(Checked):
    def test_up_to_date(self):
        script = os.path.join(VECTOR_DIR, "make_vectors.py")
        r = subprocess.run([sys.executable, script, "--check"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True,
                           env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.passed()

    def test_signed_types_covered(self):
        self.assertEqual({c["type"] for c in SIGNING["valid"]}, set(SIGNED))
        self.passed()

    def test_valid_vectors(self):
        for case in SIGNING["valid"]:
            with self.subTest(case=case["name"]):
                msg, t = case["message"], case["type"]
                self.assertEqual(msg_type(msg), t)
                body = msg[t]
                self.assertEqual(schema_errors(msg), [])
                self.assertEqual(make_vectors.public_key_hex(case["seed"]),
                                 case["public_key"])
                self.assertEqual(body[make_vectors.sender_field(t)],
                                 case["public_key"])
                self.assertEqual(make_vectors.canonical_unsigned(body),
                                 case["canonical"])
                self.assertEqual(make_vectors.signing_input(t, body).hex(),
                                 case["signing_input_hex"])
                self.assertEqual(body["signature"], case["signature"])
                self.assertTrue(make_vectors.verify_message(msg))
                self.passed()

    def test_invalid_vectors(self):
        names = {c["name"] for c in SIGNING["invalid"]}
        for want in ("offer_field_changed", "offer_as_answer",
                     "offer_wrong_key", "offer_truncated_signature",
                     "offer_uppercase_signature"):
            self.assertIn(want, names)
        for case in SIGNING["invalid"]:
            with self.subTest(case=case["name"]):
                msg = case["message"]
                self.assertEqual(msg_type(msg), case["type"])
                self.assertFalse(make_vectors.verify_message(msg),
                                 "verifies: " + case["reason"])
                errors = schema_errors(msg)
                if case["schema_valid"]:
                    self.assertEqual(errors, [])
                else:
                    self.assertNotEqual(errors, [], "schema accepts it")
                self.passed()

    def test_jcs_numbers(self):
        for entry in SIGNING["jcs_numbers"]:
            with self.subTest(bits=entry["bits"]):
                v = make_vectors.bits_to_double(entry["bits"])
                self.assertEqual(make_vectors.jcs_number(v),
                                 entry["canonical"])
                self.passed()

    def test_jcs_utf16_key_order(self):
        # RFC 8785 3.2.3: sorted by UTF-16 code units, not code points.
        obj = {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\U0001F600": 5,
               "\u0080": 6, "\u00f6": 7}
        self.assertEqual(make_vectors.canonicalize(obj),
                         '{"\\r":2,"1":4,"\u0080":6,"\u00f6":7,"\u20ac":1,'
                         '"\U0001F600":5,"\ufb33":3}')
        self.assertEqual(make_vectors.canonicalize("\u0007\"\\\u2028/é"),
                         '"\\u0007\\"\\\\\u2028/é"')
        self.passed()

    def test_example_messages(self):
        types = set()
        for step in EXAMPLE["messages"]:
            with self.subTest(step=step["step"]):
                msg = step["message"]
                t = msg_type(msg)
                types.add(t)
                self.assertEqual(schema_errors(msg), [])
                if t in SIGNED:
                    self.assertTrue(make_vectors.verify_message(msg))
                    signer = {k["name"]: k["public_key"]
                              for k in EXAMPLE["keys"]}[step["signedBy"]]
                    self.assertEqual(
                        msg[t][make_vectors.sender_field(t)], signer)
                self.passed()
        self.assertTrue(set(SIGNED) <= types)


class FleetVectors(Checked):
    """schema/vectors/fleet.json: the independent verifier reaches every
    case's outcome, the schema accepts exactly the schema_valid ones, and
    the cases cover every refusal of PROTOCOL.md 6.1."""

    def test_cases(self):
        trusted = [k["public_key"] for k in FLEET["keys"] if k["trusted"]]
        self.assertEqual(len(trusted), 2)
        for case in FLEET["cases"]:
            with self.subTest(case=case["name"]):
                got = make_vectors.verify_fleet_cert(
                    case["cert"], trusted, case["node"], case["now"],
                    FLEET["skew_ms"])
                self.assertEqual(got, case["expect"])
                valid = FLEET_VALIDATOR.is_valid(case["cert"])
                self.assertEqual(valid, case["schema_valid"])
                self.passed()

    def test_outcomes_covered(self):
        self.assertEqual({c["expect"] for c in FLEET["cases"]},
                         {"ok", "malformed", "unknown_fleet_key",
                          "bad_signature", "wrong_node", "not_yet_valid",
                          "expired"})
        self.passed()

    def test_hello_cert_vector(self):
        case = next(c for c in SIGNING["valid"] if c["name"] == "hello_cert")
        self.assertEqual(schema_errors(case["message"]), [])
        body = copy.deepcopy(case["message"])
        body["hello"]["cert"]["groups"] = ["admin"]
        self.assertFalse(make_vectors.verify_message(body),
                         "the hello signature must cover the certificate")
        self.passed()


def example_body(t, index=0):
    found = [s["message"][t] for s in EXAMPLE["messages"]
             if t in s["message"]]
    return copy.deepcopy(found[index])


def mutate(t, fn, index=0):
    body = example_body(t, index)
    fn(body)
    return {t: body}


def setp(path, value):
    def fn(body):
        obj = body
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
    return fn


def delp(key):
    def fn(body):
        del body[key]
    return fn


A = make_vectors.NODE["A"]
INVALID = [
    ("offer without signature", mutate("offer", delp("signature"))),
    ("hello without nonce", mutate("hello", delp("nonce"))),
    ("welcome without limits.maxWatches",
     mutate("welcome", lambda b: b["limits"].pop("maxWatches"))),
    ("offer without connectionInfo.natType",
     mutate("offer", lambda b: b["connectionInfo"].pop("natType"))),
    ("uppercase hex fromNodeID", mutate("offer", setp(["fromNodeID"],
                                                      A.upper()))),
    ("uppercase hex nonce", mutate("challenge", setp(
        ["nonce"], example_body("challenge")["nonce"].upper()))),
    ("uppercase SessionID", mutate("answer", setp(
        ["sessionID"], example_body("answer")["sessionID"].upper()))),
    ("SessionID without dashes", mutate("relayClose", setp(
        ["sessionID"], example_body("relayClose")["sessionID"]
        .replace("-", "")))),
    ("nodeID with a trailing newline", mutate("hello", setp(["nodeID"],
                                                           A + "\n"))),
    ("signature of 127 hex digits", mutate("hello", setp(
        ["signature"], example_body("hello")["signature"][:127]))),
    ("port 70000", mutate("offer", setp(["connectionInfo", "publicPort"],
                                        70000))),
    ("port -1", mutate("welcome", setp(["observedPort"], -1))),
    ("candidate port 0", mutate("iceCandidate", setp(["candidate", "port"],
                                                     0))),
    ("port as string", mutate("offer", setp(["connectionInfo", "localPort"],
                                            "51820"))),
    ("bad natType", mutate("offer", setp(["connectionInfo", "natType"],
                                         "cone"))),
    ("bad candidate type", mutate("iceCandidate", setp(["candidate", "type"],
                                                       "srflx"))),
    ("priority 2^32", mutate("iceCandidate", setp(["candidate", "priority"],
                                                  4294967296))),
    ("IPv4 octet 256", mutate("offer", setp(["connectionInfo", "publicIP"],
                                            "256.1.1.1"))),
    ("IP that is a host name", mutate("welcome", setp(["observedIP"],
                                                      "example.net"))),
    ("IPv6 with a zone", mutate("offer", setp(["connectionInfo", "localIP"],
                                              "fe80::1%eth0"))),
    ("IPv6 in brackets", mutate("iceCandidate", setp(["candidate", "ip"],
                                                     "[2001:db8::1]"))),
    ("timestamp 0", mutate("offer", setp(["timestamp"], 0))),
    ("timestamp 2^53", mutate("relayOpen", setp(["timestamp"],
                                                9007199254740992))),
    ("timestamp as string", mutate("answer", setp(["timestamp"],
                                                  "1767225605210"))),
    ("timestamp 1.5", mutate("relayReady", setp(["timestamp"], 1.5))),
    ("challenge version 2", mutate("challenge", setp(["version"], 2))),
    ("empty server name", mutate("challenge", setp(["server"], ""))),
    ("lookup with no node IDs", mutate("lookup", setp(["nodeIDs"], []))),
    ("lookup with 65 node IDs", mutate("lookup", setp(["nodeIDs"],
                                                      [A] * 65))),
    ("empty requestID", mutate("lookup", setp(["requestID"], ""))),
    ("presence online as string", mutate("presence", lambda b: b["peers"][0]
                                         .update(online="yes"))),
    ("relayData with bad base64", mutate("relayData", setp(["data"],
                                                           "aGVsbG8"))),
    ("error code in uppercase", mutate("error", setp(["code"],
                                                     "UNKNOWN_SESSION"))),
    ("Text of 513 characters", mutate("relayClose", setp(["reason"],
                                                         "x" * 513))),
    ("queued type relayOpen", {"queued": {
        "sessionID": "6f9619ff-8b86-4d01-b42d-00cf4fc964ff", "toNodeID": A,
        "type": "relayOpen", "expiresAt": 1767225660000}}),
    ("peerOnline without natType", {"peerOnline": {
        "nodeID": A, "lastSeen": 1767225600000}}),
    ("two top-level keys", {"ping": {"id": "1"}, "pong": {"id": "1"}}),
    ("no top-level key", {}),
    ("unknown type", {"hola": {"id": "1"}}),
    ("body is an array", {"ping": []}),
    ("body is a string", {"relayClose": "c56a4180-65aa-42ec-a945-"
                                        "5fd21dec0538"}),
    ("top level is an array", [{"ping": {}}]),
]


class InvalidMessages(Checked):
    def test_rejected(self):
        for name, msg in INVALID:
            with self.subTest(case=name):
                self.assertNotEqual(schema_errors(msg), [],
                                    "the schema accepts: %s" % name)
                self.passed()

    def test_format_checking_is_on(self):
        ip = {"$ref": "common.schema.json#/$defs/IP",
              "$id": BASE_URI + "probe.json"}
        self.assertFalse(MAKE(ip).is_valid("300.1.2.3"))
        self.assertTrue(MAKE(ip).is_valid("2001:db8::1"))
        self.passed()

    def test_unknown_fields_accepted(self):
        for step in EXAMPLE["messages"]:
            msg = copy.deepcopy(step["message"])
            t = msg_type(msg)
            with self.subTest(step=step["step"], type=t):
                msg[t]["zzFuture"] = {"nested": [1, "two", None]}
                for sub in ("connectionInfo", "candidate", "limits"):
                    if sub in msg[t]:
                        msg[t][sub]["xNew"] = True
                self.assertEqual(schema_errors(msg), [])
                self.passed()

    def test_minimal_messages_of_every_type(self):
        # Types the example does not show, and the bare minimum of others.
        minimal = [
            {"watch": {"nodeIDs": [A]}},
            {"unwatch": {"nodeIDs": [A], "requestID": "w-2"}},
            {"peerOnline": {"nodeID": A, "natType": "unknown",
                            "lastSeen": 1}},
            {"peerOffline": {"nodeID": A, "lastSeen": 9007199254740991}},
            {"queued": {"sessionID": "6f9619ff-8b86-4d01-b42d-00cf4fc964ff",
                        "toNodeID": A, "type": "iceCandidate",
                        "expiresAt": 1767225660000}},
            {"ping": {}},
            {"pong": {"id": "p1", "serverTime": 1767225600000}},
            {"relayClose": {"sessionID":
                            "c56a4180-65aa-42ec-a945-5fd21dec0538"}},
            {"relayData": {"sessionID":
                           "c56a4180-65aa-42ec-a945-5fd21dec0538",
                           "data": ""}},
            {"presence": {"peers": [{"nodeID": A, "online": False,
                                     "lastSeen": 0, "natType": "unknown"}]}},
            {"error": {"code": "internal", "message": ""}},
        ]
        covered = {msg_type(m) for m in minimal} | {
            msg_type(s["message"]) for s in EXAMPLE["messages"]}
        self.assertEqual(covered, set(TYPES))
        for msg in minimal:
            with self.subTest(type=msg_type(msg)):
                self.assertEqual(schema_errors(msg), [])
                self.passed()


def main():
    runner = unittest.TextTestRunner(verbosity=1)
    prog = unittest.main(argv=sys.argv, exit=False, testRunner=runner)
    result = prog.result
    if result.wasSuccessful():
        print("schema_examples: %d checks passed" % CHECKS)
        return 0
    print("schema_examples: FAILED (%d failures, %d errors; %d checks "
          "passed)" % (len(result.failures), len(result.errors), CHECKS))
    return 1


if __name__ == "__main__":
    sys.exit(main())
