-- V1: the base tables of the Integration DB contract (DESIGN.md).
-- Runs with search_path set to the target schema; names are unqualified.
-- Times are timestamptz (microseconds, as Canton); amounts numeric(38,10).

-- What operators want each ingester to do, and what it acknowledged.
CREATE TABLE ingestion_control (
    ingester         text PRIMARY KEY,
    desired_state    text NOT NULL DEFAULT 'running'
                     CHECK (desired_state IN ('running', 'stopped')),
    resume_offset    bigint NULL CHECK (resume_offset >= 0),
    dedup_from       timestamptz NULL,
    offset_epoch     integer NOT NULL DEFAULT 0,
    generation       bigint NOT NULL DEFAULT 0,
    actual_state     text NULL CHECK (actual_state IN ('running', 'stopped')),
    acked_generation bigint NOT NULL DEFAULT 0,
    heartbeat_at     timestamptz NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       text NOT NULL DEFAULT current_user
);

-- Where each ingester is: the last update or offset checkpoint it ingested,
-- and separately the last transaction (what `ingest-ctl last` prints).
CREATE TABLE ingestion_checkpoint (
    ingester                text PRIMARY KEY,
    "offset"                bigint NOT NULL,
    record_time             timestamptz NOT NULL,
    synchronizer_id         text NOT NULL,
    update_id               text NULL,
    offset_epoch            integer NOT NULL DEFAULT 0,
    last_tx_offset          bigint NULL,
    last_tx_record_time     timestamptz NULL,
    last_tx_synchronizer_id text NULL,
    last_tx_update_id       text NULL,
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- The dedup set: every update ingested, once.
CREATE TABLE ingested_updates (
    update_id       text PRIMARY KEY,
    ingester        text NOT NULL,
    "offset"        bigint NOT NULL,
    record_time     timestamptz NOT NULL,
    synchronizer_id text NOT NULL,
    offset_epoch    integer NOT NULL DEFAULT 0,
    ingested_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE withdrawals (
    withdrawal_id         text PRIMARY KEY,
    account_id            text NULL,
    receiver              text NULL,
    instrument_admin      text NULL,
    instrument_id         text NULL,
    amount                numeric(38, 10) NULL,
    trec_tgt              timestamptz NULL,
    status                text NOT NULL DEFAULT 'requested'
                          CHECK (status IN ('requested', 'submitted', 'completed', 'failed', 'recovered')),
    failure_reason        text NULL,
    completed_update_id   text NULL,
    completed_record_time timestamptz NULL,
    needs_reconciliation  boolean NOT NULL DEFAULT false,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deposit_accounts (
    account_id  text PRIMARY KEY,
    customer_id text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per transfer to the treasury (update id + node id of the event).
CREATE TABLE deposits (
    update_id        text NOT NULL,
    node_id          integer NOT NULL,
    account_id       text NULL,
    known_account    boolean NOT NULL,
    sender           text NOT NULL,
    instrument_admin text NOT NULL,
    instrument_id    text NOT NULL,
    amount           numeric(38, 10) NOT NULL,
    record_time      timestamptz NOT NULL,
    ingested_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (update_id, node_id)
);

CREATE TABLE account_balances (
    account_id       text NOT NULL,
    instrument_admin text NOT NULL,
    instrument_id    text NOT NULL,
    balance          numeric(38, 10) NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, instrument_admin, instrument_id)
);

-- The treasury's holdings (UTXOs).
CREATE TABLE holdings (
    contract_id        text PRIMARY KEY,
    owner              text NOT NULL,
    instrument_admin   text NOT NULL,
    instrument_id      text NOT NULL,
    amount             numeric(38, 10) NOT NULL,
    created_update_id  text NOT NULL,
    archived_update_id text NULL
);

-- Runbook B's freeze of new withdrawals.
CREATE TABLE withdrawal_gate (
    gate        text PRIMARY KEY DEFAULT 'cn-withdrawals',
    frozen      boolean NOT NULL DEFAULT false,
    frozen_at   timestamptz NULL,
    frozen_by   text NULL,
    reason      text NULL,
    ttl_seconds bigint NULL CHECK (ttl_seconds >= 0),
    tsafe       timestamptz NULL,
    thawed_at   timestamptz NULL,
    thawed_by   text NULL,
    thaw_reason text NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The DARs the participant should hold, and since when.
CREATE TABLE dar_uploads (
    main_package_id text PRIMARY KEY,
    name            text NULL,
    version         text NULL,
    file_sha256     text NOT NULL,
    size_bytes      bigint NOT NULL,
    source_path     text NULL,
    uploaded_at     timestamptz NOT NULL,
    recorded_by     text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);

-- Every mutating command of every tool.
CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    tool    text NOT NULL,
    command text NOT NULL,
    actor   text NOT NULL,
    dry_run boolean NOT NULL DEFAULT false,
    details jsonb NOT NULL DEFAULT '{}'::jsonb
);
