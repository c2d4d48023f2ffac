-- SMS providers: each poller's durable cursor and leader lease, and the outbox of free replies.
-- Instants are integer milliseconds since the Unix epoch (UTC), as in 0001.

-- One row per configured provider with an inbox query. The replica holding an unexpired lease is
-- the only one that polls it; the cursor is what the provider's query needs to go on (an id, a
-- time), as JSON, so each provider keeps its own shape.
CREATE TABLE sms_poll_cursors (
    provider        TEXT    PRIMARY KEY,
    cursor          TEXT    NOT NULL,
    lease_owner     TEXT,
    lease_until_ms  BIGINT,
    last_ok_at_ms   BIGINT,
    last_error      TEXT,
    updated_at_ms   BIGINT NOT NULL
);

-- One free reply per inbound message (provider + provider message id), sent through the provider
-- the message came from; retried until sent or given up, each attempt recorded.
CREATE TABLE sms_replies (
    id                  BIGSERIAL PRIMARY KEY,
    provider            TEXT    NOT NULL,
    provider_message_id TEXT    NOT NULL,
    recipient           TEXT    NOT NULL,
    body                TEXT    NOT NULL,
    state               TEXT    NOT NULL,
    attempts            BIGINT NOT NULL,
    due_at_ms           BIGINT NOT NULL,
    lease_owner         TEXT,
    lease_until_ms      BIGINT,
    last_error          TEXT,
    provider_ref        TEXT,
    created_at_ms       BIGINT NOT NULL,
    updated_at_ms       BIGINT NOT NULL,
    UNIQUE (provider, provider_message_id)
);
CREATE INDEX sms_replies_due ON sms_replies (state, due_at_ms);
