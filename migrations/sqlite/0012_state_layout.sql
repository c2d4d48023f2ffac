-- The current word per address, keyed in the order the audit pages it (brand, recipient type,
-- consent type, recipient) and stored in that key (WITHOUT ROWID): one b-tree where there were
-- three (the rowid table, the primary key's index and the audit's index). Every movement
-- rewrites a row of this table at a random place, so each b-tree fewer is a page fewer written
-- to the WAL per movement. Point lookups use the full key and are unaffected.
CREATE TABLE consent_state_keyed (
    brand_code      INTEGER NOT NULL,
    recipient       TEXT    NOT NULL,
    recipient_type  TEXT    NOT NULL,
    consent_type    TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    source          TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    consent_at_ms   INTEGER NOT NULL,
    event_id        INTEGER NOT NULL REFERENCES consent_events (id),
    iys_confirmed   INTEGER NOT NULL,
    updated_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (brand_code, recipient_type, consent_type, recipient)
) WITHOUT ROWID;

INSERT INTO consent_state_keyed (brand_code, recipient, recipient_type, consent_type, status,
    source, channel, consent_at_ms, event_id, iys_confirmed, updated_at_ms)
SELECT brand_code, recipient, recipient_type, consent_type, status, source, channel,
    consent_at_ms, event_id, iys_confirmed, updated_at_ms
FROM consent_state;

DROP TABLE consent_state;
ALTER TABLE consent_state_keyed RENAME TO consent_state;
