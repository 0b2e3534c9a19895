-- Each firm's audit chain head: the sequence and hash of its newest entry, written in the same
-- transaction as the entry. A log whose newest entries were deleted still hashes as a whole
-- chain, so `audit verify` and the export compare the log's end with this row, where a
-- truncation shows.
CREATE TABLE audit_chain_heads (
    firm_id   uuid   PRIMARY KEY,
    sequence  bigint NOT NULL CHECK (sequence > 0),
    hash      text   NOT NULL
);

INSERT INTO audit_chain_heads (firm_id, sequence, hash)
SELECT DISTINCT ON (firm_id) firm_id, sequence, hash FROM audit_log ORDER BY firm_id, sequence DESC;
