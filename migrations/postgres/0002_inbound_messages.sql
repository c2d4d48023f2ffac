-- Inbound SMS that were not commands (or named no brand on a shared code): kept, not acted on.
CREATE TABLE inbound_messages (
    id                  BIGSERIAL PRIMARY KEY,
    provider            TEXT    NOT NULL,
    provider_message_id TEXT    NOT NULL,
    received_at_ms      BIGINT  NOT NULL,
    sender              TEXT    NOT NULL,
    receiver            TEXT    NOT NULL,
    intent              TEXT    NOT NULL,
    raw                 TEXT    NOT NULL,
    UNIQUE (provider, provider_message_id)
);
