-- A report's mail: the outbox row that carries it, so that the list of
-- reports tells when it was mailed (the outbox's sent_at) instead of a
-- copy of that time nothing kept up to date.

ALTER TABLE reports
    ADD COLUMN mail_id bigint REFERENCES mail_outbox (id) ON DELETE SET NULL;
ALTER TABLE reports DROP COLUMN mailed_at;
