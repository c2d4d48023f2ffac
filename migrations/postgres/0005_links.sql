-- Short links for the web opt-out channel (GitHub issue 6).
-- A link is one (brand, recipient, type, campaign); minting it again returns the same link.
-- `campaign` is '' when none, so the unique key works the same on both backends.
CREATE TABLE links (
    id              BIGSERIAL PRIMARY KEY,
    brand_code      BIGINT  NOT NULL,
    recipient       TEXT    NOT NULL,
    recipient_type  TEXT    NOT NULL,
    consent_type    TEXT    NOT NULL,
    campaign        TEXT    NOT NULL DEFAULT '',
    created_at_ms   BIGINT  NOT NULL,
    expires_at_ms   BIGINT  NOT NULL,
    UNIQUE (brand_code, recipient, recipient_type, consent_type, campaign)
);

-- Only the SHA-256 of a code is stored (hex). Several codes may lead to one link, so links minted
-- before a key rotation keep working.
CREATE TABLE link_codes (
    code_hash       TEXT    PRIMARY KEY,
    link_id         BIGINT  NOT NULL REFERENCES links (id),
    created_at_ms   BIGINT  NOT NULL
);
CREATE INDEX link_codes_link ON link_codes (link_id);
