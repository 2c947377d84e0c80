-- 003_audit: the operator's audit log (issue 16, README "Admin API").
--
-- audit_log   One row per change made through the admin API (allowlist,
--             revocation, disconnect), written before the API answers:
--             id (increasing), time (ms since the epoch), who (the token's
--             name), peer (the client's address:port), action (e.g.
--             "revoke"), target (a node ID or serial), result ("ok",
--             "unchanged", an error) and detail (free text, may be empty).
--             The same line goes to the log (NOTICE "audit: ...").

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    time   INTEGER NOT NULL,
    who    TEXT    NOT NULL,
    peer   TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT    NOT NULL,
    result TEXT    NOT NULL,
    detail TEXT    NOT NULL DEFAULT ''
);
