-- 001_init: the initial rendezvousd schema.
--
-- Applied by the runner in db/migrate.c inside one transaction together with
-- every other pending migration; it must not contain BEGIN/COMMIT itself.
-- All times are INTEGER milliseconds since the Unix epoch (UTC).
--
-- schema_version  The runner's bookkeeping: one row per applied migration.
--                 The database's schema version is max(version); a database
--                 with a version newer than the binary knows is refused.
--
-- nodes           Every node the server has seen, keyed by its Ed25519
--                 public key (64 lowercase hex characters). online is 0/1;
--                 nat_type is the NAT behaviour last reported/classified;
--                 observed_ip/observed_port are the public address the
--                 server last saw the node connect from (NULL if unknown).
--
-- offline_queue   Signalling messages (offer, answer, iceCandidate,
--                 relayOpen, relayReady, ...) addressed to a node that was
--                 offline, kept until delivered or until expires. id gives
--                 the delivery order. raw holds the exact original message
--                 bytes, forwarded unchanged so signatures stay valid.
--                 type deliberately has no CHECK so new message types need
--                 no migration.

CREATE TABLE schema_version (
    version    INTEGER PRIMARY KEY CHECK (version > 0),
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
);

CREATE TABLE nodes (
    node_id       TEXT    PRIMARY KEY NOT NULL
                  CHECK (length(node_id) = 64
                         AND node_id NOT GLOB '*[^0-9a-f]*'),
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    online        INTEGER NOT NULL DEFAULT 0 CHECK (online IN (0, 1)),
    nat_type      TEXT    NOT NULL DEFAULT 'unknown'
                  CHECK (nat_type IN ('fullCone', 'restrictedCone',
                                      'portRestricted', 'symmetric',
                                      'unknown')),
    observed_ip   TEXT,
    observed_port INTEGER
                  CHECK (observed_port IS NULL
                         OR observed_port BETWEEN 0 AND 65535)
) WITHOUT ROWID;

CREATE TABLE offline_queue (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient  TEXT    NOT NULL
               CHECK (length(recipient) = 64
                      AND recipient NOT GLOB '*[^0-9a-f]*'),
    sender     TEXT    NOT NULL
               CHECK (length(sender) = 64
                      AND sender NOT GLOB '*[^0-9a-f]*'),
    type       TEXT    NOT NULL,
    session_id TEXT,
    raw        BLOB    NOT NULL,
    created    INTEGER NOT NULL,
    expires    INTEGER NOT NULL
);

-- Delivery: "all messages for X in order" when X comes online.
CREATE INDEX offline_queue_recipient ON offline_queue (recipient, id);
-- Expiry sweep: "DELETE ... WHERE expires < now".
CREATE INDEX offline_queue_expires ON offline_queue (expires);
