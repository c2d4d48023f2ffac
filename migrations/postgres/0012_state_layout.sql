-- The current word per address, keyed in the order the audit pages it (brand, recipient type,
-- consent type, recipient): the primary key serves the audit too, so its separate index goes
-- and every movement updates one index fewer. Upserts name the same columns, in any order.
ALTER TABLE consent_state DROP CONSTRAINT consent_state_pkey;
ALTER TABLE consent_state ADD PRIMARY KEY (brand_code, recipient_type, consent_type, recipient);
DROP INDEX consent_state_audit;
