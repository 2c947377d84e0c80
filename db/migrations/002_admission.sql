-- 002_admission: who may authenticate (issue 16, PROTOCOL.md 6.1).
--
-- allowlist   Node IDs admitted in --admission allowlist (and
--             allowlist,fleet). added: when the operator added it (ms).
-- revoked     Revocations, checked in every admission mode: kind 'node'
--             (value = a node ID, 64 lowercase hex) or 'serial' (value = a
--             fleet certificate's serial, 32 lowercase hex). added: when.
--
-- rendezvousd loads both tables at start and keeps them in memory; the
-- admin API writes through (rendezvous/admission.c). With --redis the same
-- lists live in Redis instead (engine_redis_scripts.h).

CREATE TABLE allowlist (
    node_id TEXT    PRIMARY KEY NOT NULL
            CHECK (length(node_id) = 64 AND node_id NOT GLOB '*[^0-9a-f]*'),
    added   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE revoked (
    kind  TEXT    NOT NULL CHECK (kind IN ('node', 'serial')),
    value TEXT    NOT NULL
          CHECK (length(value) = CASE kind WHEN 'node' THEN 64 ELSE 32 END
                 AND value NOT GLOB '*[^0-9a-f]*'),
    added INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
) WITHOUT ROWID;
