-- Counts the claims of a job, and is never refunded: a worker's lease names
-- the claim it came from, so the writes of a lease that ended (a wait that
-- refunded its attempt, an operator's retry that gave fresh attempts, then
-- a claim by the same process) cannot act on a later claim with the same
-- owner and attempt.
ALTER TABLE jobs ADD COLUMN claims BIGINT NOT NULL DEFAULT 0;
