-- 004_chat_context: clearing a session's context.
--
-- "Clear context" keeps the messages (they are history and analytics), but
-- the model is shown only those written after cleared_at.
ALTER TABLE conversations ADD COLUMN cleared_at timestamptz;
