-- ingest-ctl's built-in queries, in the format of `--queries FILE`.
--
-- Each statement follows a `-- name: NAME` line, gets the ingester name as $1
-- and returns at most one row, with the columns named below (types in
-- docs/ingestion-contract.md). A file given with --queries replaces the
-- statements it names; the others stay as here.

-- name: last
-- The last ingested transaction (never an offset checkpoint): what
-- `ingest-ctl last` prints and `offset-lookup -` reads.
SELECT cp.last_tx_record_time                    AS record_time,
       cp.last_tx_synchronizer_id                AS synchronizer_id,
       cp.last_tx_offset                         AS "offset",
       cp.last_tx_update_id                      AS update_id,
       coalesce(u.offset_epoch, cp.offset_epoch) AS epoch
  FROM ingestion_checkpoint cp
  LEFT JOIN ingested_updates u ON u.update_id = cp.last_tx_update_id
 WHERE cp.ingester = $1
   AND cp.last_tx_update_id IS NOT NULL;

-- name: checkpoint
-- Where the ingester is: the last update or offset checkpoint it committed
-- (update_id NULL for an offset checkpoint) and the offset epoch it belongs to.
SELECT "offset", record_time, synchronizer_id, update_id, offset_epoch AS epoch
  FROM ingestion_checkpoint
 WHERE ingester = $1;
