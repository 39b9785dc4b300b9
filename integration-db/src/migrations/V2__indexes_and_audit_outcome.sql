-- V2: indexes for the queries the tools run, and the outcome of audited commands.

-- `ingest-ctl` and the drill: updates of one ingester by record time / offset.
CREATE INDEX ingested_updates_ingester_record_time ON ingested_updates (ingester, record_time);
CREATE INDEX ingested_updates_epoch_offset ON ingested_updates (offset_epoch, "offset");

-- `withdrawal-gate tsafe`: max trec_tgt over in-flight withdrawals.
CREATE INDEX withdrawals_in_flight_trec_tgt ON withdrawals (trec_tgt)
    WHERE status IN ('requested', 'submitted');

CREATE INDEX deposits_account_record_time ON deposits (account_id, record_time);

CREATE INDEX holdings_active ON holdings (owner, instrument_admin, instrument_id)
    WHERE archived_update_id IS NULL;

-- `dar-sync`: uploads since T.
CREATE INDEX dar_uploads_uploaded_at ON dar_uploads (uploaded_at);

CREATE INDEX audit_log_at ON audit_log (at);

-- What came of an audited command: ok, refused, failed (NULL for rows from V1).
ALTER TABLE audit_log ADD COLUMN outcome text NULL
    CHECK (outcome IN ('ok', 'refused', 'failed'));
