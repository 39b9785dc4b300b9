#!/usr/bin/env bash
# restore-validator.sh — runbook A: restore the Exchange Validator Node from a
# backup without losing or double-counting a transaction (docs/runbook-validator-restore.md).
#
#   scripts/restore-validator.sh --state-dir /var/lib/canton-dr/inc-42 \
#     --manifest /backups/manifests/backup-manifest-20250101T040000Z.json \
#     --restore-cmd '/opt/ops/restore-validator-node.sh 20250101T040000Z'
#
# Steps (each calls one tool and is journaled in --state-dir):
#   A1 stop Tx History Ingestion, confirmed stopped      ingest-ctl stop --wait
#   A2 read tRecovery and synchronizerId of the last      ingest-ctl last
#      ingested transaction (kept in the journal: never read again after A3)
#   A3 restore the node (yours: --restore-cmd, a prompt on a terminal, or
#      --yes after you restored it); guard: backup younger than 30 days
#   A4 re-upload every DAR the node lost                  dar-sync diff / upload --registry
#   A5 offRecovery for tRecovery, waiting for catch-up    offset-lookup --wait
#   A6 resume ingestion after offRecovery                 ingest-ctl set-offset
#   A7 restart ingestion and wait until caught up         ingest-ctl start --caught-up
#
# A rerun with the same --state-dir continues at the first unfinished step
# (after Ctrl-C, kill -9, or a failed step), reusing what the journal holds.
# A finished journal is not run again: use a new --state-dir per restore.
#
# Options (each also from the environment variable in brackets):
#   --state-dir DIR            journal and tool outputs of this restore [CANTON_DR_STATE_DIR]
#   --backup-time T            when the restored backup was taken (RFC 3339) [CANTON_DR_BACKUP_TIME]
#   --manifest FILE            or its backup-manifest.sh manifest (backupTime) [CANTON_DR_BACKUP_MANIFEST]
#   --max-backup-age D         refuse older backups (default and upper bound 30d) [CANTON_DR_MAX_BACKUP_AGE]
#   --restore-cmd CMD          your node restore, run by `bash -c` in A3 [CANTON_DR_RESTORE_CMD]
#   --yes                      confirm that you restored the node yourself after A1-A2 ran [CANTON_DR_YES=1]
#   --non-unique-record-times  record times are not unique (ACS import, party migration,
#                              repair): look up tRecovery - 1us and skip update ids already
#                              ingested from tRecovery on [CANTON_DR_NON_UNIQUE_RECORD_TIMES=1]
#   --dar-dir DIR              also DARs in DIR must be on the node (repeatable) [DAR_SYNC_DIR, colon-separated]
#   --admin-api HOST:PORT      participant admin API [CANTON_ADMIN_API]
#   --ledger-api HOST:PORT     participant ledger API [CANTON_LEDGER_API]
#   --access-token-file FILE   bearer token for both APIs [CANTON_ACCESS_TOKEN_FILE]
#   --db-url URL               Integration DB, without a password (PGPASSWORD, or the
#                              whole URL in INTEGRATION_DB_URL) [INTEGRATION_DB_URL]
#   --schema NAME              Integration DB schema [INTEGRATION_DB_SCHEMA]
#   --ingester NAME            the ingester to steer [INGESTER_NAME]
#   --stop-timeout D           A1 wait (default 5m) [CANTON_DR_STOP_TIMEOUT]
#   --lookup-timeout D         A5 wait for the node to catch up (default 30m) [CANTON_DR_LOOKUP_TIMEOUT]
#   --catch-up-timeout D       A7 wait for ingestion to catch up (default 30m) [CANTON_DR_CATCH_UP_TIMEOUT]
#   --bin-dir DIR              where the tools are [CANTON_DR_BIN_DIR]
#   --output json|text         stdout format (default: json unless a terminal) [CANTON_DR_OUTPUT]
#   --dry-run                  print the plan with the values it would use; change nothing
# TLS and the other tool settings (CANTON_TLS, CANTON_CA_CERT, PG*, ...) pass
# through the environment. No secret is ever put on a command line.
#
# Output: one JSON record per step on stdout (as in the journal), then
# {"type":"result","status":…,"exitCode":…,"values":{tRecovery,offRecovery,…}}.
# Exit codes: 0 done; 1 DARs still missing after A4; 2 usage or configuration;
# 3 a tool or the restore command failed (transient: rerun); 4 a wait timed out;
# 5 refused for safety (backup too old, restore not confirmed, ingestion not stopped).
# shellcheck disable=SC2317 # the step functions are called indirectly, by cdr_step
set -euo pipefail
shopt -s inherit_errexit

CDR_PROG=restore-validator
# shellcheck source=lib/common.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/common.sh"
# shellcheck source=lib/journal.sh
source "$CDR_LIB_DIR/journal.sh"
# shellcheck source=lib/operator.sh
source "$CDR_LIB_DIR/operator.sh"

readonly CDR_RUNBOOK=validator-restore
readonly SPLICE_MAX_AGE=$((30 * 86400))

usage() {
  cdr_usage "${BASH_SOURCE[0]}"
}

truthy() { case ${1:-} in 1 | true | yes) return 0 ;; *) return 1 ;; esac }

parse_args() {
  CDR_STATE_DIR=${CANTON_DR_STATE_DIR:-}
  BACKUP_TIME_ARG=${CANTON_DR_BACKUP_TIME:-}
  MANIFEST=${CANTON_DR_BACKUP_MANIFEST:-}
  MAX_AGE_ARG=${CANTON_DR_MAX_BACKUP_AGE:-}
  CDR_RESTORE_CMD=${CANTON_DR_RESTORE_CMD:-}
  CDR_YES=0
  truthy "${CANTON_DR_YES:-}" && CDR_YES=1
  NON_UNIQUE=0
  truthy "${CANTON_DR_NON_UNIQUE_RECORD_TIMES:-}" && NON_UNIQUE=1
  STOP_TIMEOUT=${CANTON_DR_STOP_TIMEOUT:-5m}
  LOOKUP_TIMEOUT=${CANTON_DR_LOOKUP_TIMEOUT:-30m}
  CATCH_UP_TIMEOUT=${CANTON_DR_CATCH_UP_TIMEOUT:-30m}
  local output=${CANTON_DR_OUTPUT:-}
  DAR_DIRS=()
  if [[ -n "${DAR_SYNC_DIR:-}" ]]; then
    IFS=: read -ra DAR_DIRS <<<"$DAR_SYNC_DIR"
  fi
  unset DAR_SYNC_DIR
  while [[ $# -gt 0 ]]; do
    case $1 in
    --state-dir) CDR_STATE_DIR=${2:?$1 needs a directory}; shift 2 ;;
    --backup-time) BACKUP_TIME_ARG=${2:?$1 needs a time}; shift 2 ;;
    --manifest) MANIFEST=${2:?$1 needs a file}; shift 2 ;;
    --max-backup-age) MAX_AGE_ARG=${2:?$1 needs a duration}; shift 2 ;;
    --restore-cmd) CDR_RESTORE_CMD=${2:?$1 needs a command}; shift 2 ;;
    --yes) CDR_YES=1; shift ;;
    --non-unique-record-times) NON_UNIQUE=1; shift ;;
    --dar-dir) DAR_DIRS+=("${2:?$1 needs a directory}"); shift 2 ;;
    --admin-api) export CANTON_ADMIN_API=${2:?$1 needs HOST:PORT}; shift 2 ;;
    --ledger-api) export CANTON_LEDGER_API=${2:?$1 needs HOST:PORT}; shift 2 ;;
    --access-token-file) export CANTON_ACCESS_TOKEN_FILE=${2:?$1 needs a file}; shift 2 ;;
    --db-url) cdr_set_db_url "${2:?$1 needs a URL}"; shift 2 ;;
    --schema) export INTEGRATION_DB_SCHEMA=${2:?$1 needs a name}; shift 2 ;;
    --ingester) export INGESTER_NAME=${2:?$1 needs a name}; shift 2 ;;
    --stop-timeout) STOP_TIMEOUT=${2:?$1 needs a duration}; shift 2 ;;
    --lookup-timeout) LOOKUP_TIMEOUT=${2:?$1 needs a duration}; shift 2 ;;
    --catch-up-timeout) CATCH_UP_TIMEOUT=${2:?$1 needs a duration}; shift 2 ;;
    --bin-dir) export CANTON_DR_BIN_DIR=${2:?$1 needs a directory}; shift 2 ;;
    --output) output=${2:?$1 needs json or text}; shift 2 ;;
    --dry-run) CDR_DRY_RUN=1; shift ;;
    -h | --help) usage ;;
    *) cdr_die "unknown argument '$1'" "see: restore-validator.sh --help" "$CDR_USAGE" ;;
    esac
  done
  CDR_OUTPUT=$(cdr_output_format "$output")
  [[ -n "$CDR_STATE_DIR" ]] ||
    cdr_die "--state-dir is required" "name a directory for this restore's journal, e.g. /var/lib/canton-dr/INC-42" "$CDR_USAGE"
  local d
  for d in "$STOP_TIMEOUT" "$LOOKUP_TIMEOUT" "$CATCH_UP_TIMEOUT"; do
    cdr_duration "$d" "timeout" >/dev/null
  done
  MAX_AGE=$SPLICE_MAX_AGE
  if [[ -n "$MAX_AGE_ARG" ]]; then
    MAX_AGE=$(cdr_duration "$MAX_AGE_ARG" "--max-backup-age")
    [[ "$MAX_AGE" -le "$SPLICE_MAX_AGE" ]] ||
      cdr_die "--max-backup-age $MAX_AGE_ARG is over 30 days" \
        "Splice restores only backups younger than 30 days (sequencers prune after 30 days)" "$CDR_USAGE"
  fi
  for d in "${DAR_DIRS[@]}"; do
    [[ -e "$d" ]] || cdr_die "--dar-dir $d does not exist" "" "$CDR_USAGE"
  done
  [[ -n "${CANTON_ADMIN_API:-}" ]] || cdr_die "the admin API is not set" \
    "pass --admin-api HOST:PORT or set CANTON_ADMIN_API" "$CDR_USAGE"
  [[ -n "${CANTON_LEDGER_API:-}" ]] || cdr_die "the ledger API is not set" \
    "pass --ledger-api HOST:PORT or set CANTON_LEDGER_API" "$CDR_USAGE"
}

# The backup time from --backup-time, --manifest, or the journal's first run.
resolve_backup_time() {
  local from_flag="" from_journal
  MANIFEST_WARNINGS='[]'
  if [[ -n "$BACKUP_TIME_ARG" ]]; then
    cdr_epoch "$BACKUP_TIME_ARG" "--backup-time" >/dev/null
    from_flag=$BACKUP_TIME_ARG
  elif [[ -n "$MANIFEST" ]]; then
    [[ -r "$MANIFEST" ]] || cdr_die "--manifest $MANIFEST cannot be read" \
      "pass the manifest backup-manifest.sh wrote for this backup" "$CDR_USAGE"
    local m
    m=$(jq -c 'if .type == "backup-manifest" then .manifest else . end' "$MANIFEST" 2>/dev/null) ||
      cdr_die "--manifest $MANIFEST is not JSON" "pass the manifest backup-manifest.sh wrote" "$CDR_USAGE"
    [[ "$(jq -r '.kind // ""' <<<"$m")" == CantonDrBackupManifest ]] ||
      cdr_die "--manifest $MANIFEST is not a backup manifest (kind CantonDrBackupManifest)" \
        "pass the manifest backup-manifest.sh wrote, or --backup-time" "$CDR_USAGE"
    from_flag=$(jq -r '.backupTime // ""' <<<"$m")
    [[ -n "$from_flag" ]] || cdr_die "--manifest $MANIFEST has no backupTime" "pass --backup-time" "$CDR_USAGE"
    cdr_epoch "$from_flag" "the manifest's backupTime" >/dev/null
    MANIFEST_WARNINGS=$(jq -c '.warnings // []' <<<"$m")
    local w
    while IFS= read -r w; do
      [[ -z "$w" ]] || cdr_warn "backup manifest: $w"
    done < <(jq -r '.[]' <<<"$MANIFEST_WARNINGS")
  fi
  from_journal=$(jq -r '.backupTime // ""' <<<"$JOURNAL_OPTIONS")
  if [[ -n "$from_flag" && -n "$from_journal" && "$from_flag" != "$from_journal" ]]; then
    cdr_die "this restore was started with backup time $from_journal, not $from_flag" \
      "rerun with the same backup, or start a new restore in a fresh --state-dir" "$CDR_USAGE"
  fi
  BACKUP_TIME=${from_flag:-$from_journal}
  [[ -n "$BACKUP_TIME" ]] || cdr_die "the time of the backup to restore is unknown" \
    "pass --backup-time T or --manifest FILE (written by backup-manifest.sh): backups of 30 days or more cannot be restored" "$CDR_USAGE"
}

# Guard of A3: the backup must be younger than --max-backup-age (30 days).
# Sets BACKUP_AGE; on failure sets STEP_ERROR/STEP_HINT and returns 2 or 5.
check_backup_age() {
  local bt now
  bt=$(cdr_epoch "$BACKUP_TIME" "backup time")
  now=$(date -u +%s)
  BACKUP_AGE=$((now - bt))
  if [[ "$BACKUP_AGE" -lt -300 ]]; then
    STEP_ERROR="the backup time $BACKUP_TIME is in the future"
    STEP_HINT="check --backup-time (UTC) and this host's clock"
    return "$CDR_USAGE"
  fi
  if [[ "$BACKUP_AGE" -ge "$MAX_AGE" ]]; then
    local days=$((BACKUP_AGE / 86400)) hours=$(((BACKUP_AGE % 86400) / 3600))
    STEP_ERROR="refused: the backup from $BACKUP_TIME is ${days}d ${hours}h old, at or over the limit of $((MAX_AGE / 86400))d $(((MAX_AGE % 86400) / 3600))h"
    STEP_HINT="restore a newer backup: sequencers prune after 30 days, so a node restored from an older one cannot catch up (Splice: re-onboard from the identities backup instead)"
    return "$CDR_REFUSED"
  fi
}

# The JSON of the options this run uses, as the journal keeps them.
run_options() {
  jq -cn --arg bt "$BACKUP_TIME" --arg m "$MANIFEST" --argjson nu "$([[ "$NON_UNIQUE" -eq 1 ]] && echo true || echo false)" \
    --arg ing "${INGESTER_NAME:-tx-ingest}" --arg schema "${INTEGRATION_DB_SCHEMA:-canton_integration}" \
    --arg admin "$CANTON_ADMIN_API" --arg ledger "$CANTON_LEDGER_API" \
    '{backupTime: $bt, manifest: (if $m == "" then null else $m end), nonUniqueRecordTimes: $nu,
      ingester: $ing, schema: $schema, adminApi: $admin, ledgerApi: $ledger}'
}

# Options that shape the restore must stay those of its first run.
reconcile_options() {
  [[ "$JOURNAL_OPTIONS" != '{}' ]] || return 0
  local j_nu j_ingester j_schema
  { read -r j_nu; read -r j_ingester; read -r j_schema; } < <(jq -r \
    '(.nonUniqueRecordTimes // false), (.ingester // ""), (.schema // "")' <<<"$JOURNAL_OPTIONS")
  if [[ "$j_nu" == true && "$NON_UNIQUE" -eq 0 ]]; then
    cdr_log "this restore was started with --non-unique-record-times; keeping it"
    NON_UNIQUE=1
  elif [[ "$j_nu" == false && "$NON_UNIQUE" -eq 1 ]]; then
    cdr_die "this restore was started without --non-unique-record-times" \
      "rerun without it, or start a new restore in a fresh --state-dir" "$CDR_USAGE"
  fi
  if [[ -n "$j_ingester" && "$j_ingester" != "${INGESTER_NAME:-tx-ingest}" ]]; then
    cdr_die "this restore was started with ingester '$j_ingester', not '${INGESTER_NAME:-tx-ingest}'" \
      "rerun with the same --ingester, or start a new restore in a fresh --state-dir" "$CDR_USAGE"
  fi
  if [[ -n "$j_schema" && "$j_schema" != "${INTEGRATION_DB_SCHEMA:-canton_integration}" ]]; then
    cdr_die "this restore was started with schema '$j_schema', not '${INTEGRATION_DB_SCHEMA:-canton_integration}'" \
      "rerun with the same --schema, or start a new restore in a fresh --state-dir" "$CDR_USAGE"
  fi
}

# --- the steps -------------------------------------------------------------

step_a1() {
  local args=(stop --wait --timeout "$STOP_TIMEOUT")
  [[ "$CDR_DRY_RUN" -eq 1 ]] && args+=(--dry-run)
  cdr_tool "$INGEST_CTL" "${args[@]}" || return
  STEP_OUTPUT=$TOOL_RESULT
  STEP_VALUES=$(jq -c '{ingester, liveIngester, acknowledged, stopGeneration: .generation}' <<<"$TOOL_RESULT")
}

step_a2() {
  local rc=0
  cdr_tool "$INGEST_CTL" last || rc=$?
  case $rc in
  0)
    STEP_OUTPUT=$TOOL_RESULT
    STEP_VALUES=$(jq -c '{tRecovery: .recordTime, synchronizerId, preRestoreOffset: .offset,
      lastUpdateId: .updateId, preRestoreEpoch: .epoch, nothingIngested: false}' <<<"$TOOL_RESULT")
    ;;
  1)
    # Nothing ingested yet: after the restore, ingestion starts from the beginning.
    STEP_ERROR=""
    STEP_HINT=""
    STEP_OUTPUT=$TOOL_RESULT
    STEP_VALUES='{"tRecovery":null,"synchronizerId":null,"nothingIngested":true}'
    cdr_warn "no transaction was ingested yet: ingestion will resume from the ledger start (offset 0)"
    ;;
  *) return "$rc" ;;
  esac
}

step_a3() {
  check_backup_age || return
  local t_recovery sync_id
  { read -r t_recovery; read -r sync_id; } < <(jq -r '(.tRecovery // ""), (.synchronizerId // "")' <<<"$VALUES")
  export CANTON_DR_BACKUP_TIME=$BACKUP_TIME CANTON_DR_T_RECOVERY=$t_recovery CANTON_DR_SYNCHRONIZER_ID=$sync_id
  local rc=0
  operator_restore A2 "restore the validator node from the backup of $BACKUP_TIME" \
    "Ingestion is stopped and tRecovery ($t_recovery) is in the journal. Restore the node now
(Splice: scale the validator to 0, restore the validator-app and participant databases
of $BACKUP_TIME, scale it up again) and wait until it runs." || rc=$?
  STEP_VALUES=$(jq -c --arg bt "$BACKUP_TIME" --argjson age "$BACKUP_AGE" --argjson w "$MANIFEST_WARNINGS" \
    '. + {backupTime: $bt, backupAgeSeconds: $age} + (if $w == [] then {} else {manifestWarnings: $w} end)' <<<"$STEP_VALUES")
  return "$rc"
}

# The --dir flags for dar-sync.
dar_args() {
  local d
  for d in "${DAR_DIRS[@]}"; do
    printf '%s\0' --dir "$d"
  done
}

step_a4() {
  local extra=() rc=0
  mapfile -d '' extra < <(dar_args)
  if [[ "$CDR_DRY_RUN" -eq 1 && "$(journal_status A3)" != "done" ]]; then
    # Before the restore: what the registry says was uploaded since the backup
    # (the node will lose those).
    cdr_tool "$DAR_SYNC" diff --registry --since "$BACKUP_TIME" "${extra[@]}" || return
    STEP_OUTPUT=$TOOL_RESULT
    STEP_VALUES=$(jq -cs '{darsUploadedSinceBackup:
        [.[] | select(.type == "present" or .type == "missing") | select(.builtin | not) | .mainPackageId]}' \
      "$CDR_OUT_DIR/$CDR_CURRENT_STEP.0.dar-sync.ndjson")
    STEP_NOTE="the restore loses the DARs uploaded since the backup; after it, every DAR of the registry the node lacks is uploaded again"
    return 0
  fi
  cdr_tool "$DAR_SYNC" diff --registry "${extra[@]}" || return
  local missing
  missing=$(jq -cs '[.[] | select(.type == "missing") | .mainPackageId]' \
    "$CDR_OUT_DIR/$CDR_CURRENT_STEP.$CDR_CURRENT_ATTEMPT.dar-sync.ndjson")
  local args=(upload --registry "${extra[@]}")
  [[ "$CDR_DRY_RUN" -eq 1 ]] && args+=(--dry-run)
  cdr_tool "$DAR_SYNC" "${args[@]}" || rc=$?
  STEP_OUTPUT=$TOOL_RESULT
  STEP_VALUES=$(jq -c --argjson m "$missing" '{darsMissingAfterRestore: $m, darsUploaded: (.uploaded // 0),
    darsWouldUpload: (.wouldUpload // 0), darsConfirmed: (.confirmed // 0), darsStillMissing: (.unconfirmed // 0)}' <<<"$TOOL_RESULT")
  return "$rc"
}

step_a5() {
  local input
  input=$(jq -c 'if .nothingIngested then null else {synchronizerId, recordTime: .tRecovery} end' <<<"$VALUES")
  if [[ "$input" == null ]]; then
    STEP_VALUES='{"offRecovery":0}'
    STEP_NOTE="nothing was ingested before the restore: ingestion starts from the ledger start"
    STEP_OUTPUT='{"type":"offset","offset":0}'
    return 0
  fi
  local args=(- --wait --timeout "$LOOKUP_TIMEOUT")
  [[ "$NON_UNIQUE" -eq 1 ]] && args+=(--non-unique-record-times)
  if [[ "$CDR_DRY_RUN" -eq 1 ]]; then
    CDR_COMMANDS+=("$(cdr_quote offset-lookup "${args[@]}") <<< '$input'")
    STEP_VALUES=$(jq -c --argjson nu "$([[ "$NON_UNIQUE" -eq 1 ]] && echo true || echo false)" \
      '{lookupAt: (if $nu then "tRecovery - 1us (after a lookup at tRecovery proves the node passed it)" else "tRecovery" end),
        offRecovery: null}' <<<"$VALUES")
    STEP_NOTE="looked up on the restored node once it has caught up past tRecovery"
    return 0
  fi
  cdr_tool --stdin "$input" "$OFFSET_LOOKUP" "${args[@]}" || return
  STEP_OUTPUT=$TOOL_RESULT
  STEP_VALUES=$(jq -c '{offRecovery: .offset, lookupTimestamp: .timestamp, lookupMode: .mode, lookupForce: .force}' <<<"$TOOL_RESULT")
}

step_a6() {
  local lookup args=(set-offset --ledger-api "$CANTON_LEDGER_API")
  if [[ "$CDR_DRY_RUN" -eq 1 && "$(journal_status A5)" != "done" ]]; then
    CDR_COMMANDS+=("offset-lookup … | $(cdr_quote ingest-ctl "${args[@]}") -")
    STEP_VALUES=$(jq -c --argjson nu "$([[ "$NON_UNIQUE" -eq 1 ]] && echo true || echo false)" \
      '{resumeAfter: "offRecovery (A5)", dedupFrom: (if $nu then .tRecovery else null end)}' <<<"$VALUES")
    return 0
  fi
  lookup=$(journal_output A5)
  [[ "$CDR_DRY_RUN" -eq 1 ]] && args+=(--dry-run)
  if [[ "$lookup" == null || "$VALUES" == *'"nothingIngested":true'* ]]; then
    cdr_tool "$INGEST_CTL" "${args[@]}" "$(jq -r '.offRecovery // 0' <<<"$VALUES")" || return
  else
    cdr_tool --stdin "$lookup" "$INGEST_CTL" "${args[@]}" - || return
  fi
  STEP_OUTPUT=$TOOL_RESULT
  STEP_VALUES=$(jq -c '{resumeOffset, dedupFrom, offsetEpoch, resumeChanged: .changed}' <<<"$TOOL_RESULT")
}

step_a7() {
  local args=(start --caught-up --ledger-api "$CANTON_LEDGER_API" --timeout "$CATCH_UP_TIMEOUT")
  if [[ "$CDR_DRY_RUN" -eq 1 ]]; then
    CDR_COMMANDS+=("$(cdr_quote ingest-ctl "${args[@]}")")
    STEP_NOTE="ingestion restarts after offRecovery; the step waits until it reaches the ledger end"
    return 0
  fi
  cdr_tool "$INGEST_CTL" "${args[@]}" || return
  STEP_OUTPUT=$TOOL_RESULT
  STEP_VALUES=$(jq -c '{caughtUp, caughtUpPosition: .position, caughtUpLedgerEnd: .ledgerEnd, catchUpMs: .waitedMs}' <<<"$TOOL_RESULT")
}

# Runs a step, then refreshes VALUES from the journal.
step() {
  cdr_step "$@"
  if [[ "$CDR_STEP_RAN" -eq 1 ]]; then
    VALUES=$(jq -c --argjson v "$STEP_VALUES" '. + $v' <<<"$VALUES")
  fi
}

main() {
  parse_args "$@"
  cdr_require_jq
  INGEST_CTL=$(cdr_find_tool ingest-ctl)
  OFFSET_LOOKUP=$(cdr_find_tool offset-lookup)
  DAR_SYNC=$(cdr_find_tool dar-sync)
  export CANTON_DR_OUTPUT=json

  # Everything is checked before the state directory is created or locked.
  journal_locate
  journal_check_runbook
  JOURNAL_OPTIONS=$(journal_first_options)
  if journal_finished; then
    cdr_log "this restore finished already (journal $CDR_JOURNAL); nothing to do"
    cdr_log "a new restore needs a fresh --state-dir"
    finish_run 0
  fi
  resolve_backup_time
  reconcile_options
  # The age guard, before anything changes (A3 checks it again).
  if [[ "$(journal_status A3)" != "done" ]]; then
    local rc=0
    check_backup_age || rc=$?
    [[ "$rc" -eq 0 ]] || cdr_die "$STEP_ERROR" "$STEP_HINT" "$rc"
  fi
  journal_open
  # Another run may have moved on while we were not holding the lock.
  journal_finished && finish_run 0
  trap 'on_interrupt INT' INT
  trap 'on_interrupt TERM' TERM
  [[ "$CDR_DRY_RUN" -eq 1 ]] || run_started "$(run_options)"
  VALUES=$(journal_values)

  step A1 "stop Tx History Ingestion and wait until it acknowledged" step_a1
  step A2 "read tRecovery and synchronizerId of the last ingested transaction" step_a2
  step A3 "restore the validator node from the backup (operator)" step_a3
  step A4 "re-upload the DARs the restored node lacks" step_a4
  step A5 "look up offRecovery for tRecovery on the restored node" step_a5
  step A6 "set ingestion to resume after offRecovery" step_a6
  step A7 "restart ingestion and wait until it caught up" step_a7

  if [[ -n "$CDR_PREDICTED_REFUSAL" ]]; then
    STEP_ERROR="refused: $CDR_PREDICTED_REFUSAL"
    STEP_HINT="pass --restore-cmd CMD, run on a terminal, or restore the node after A1-A2 and rerun with --yes"
    finish_run "$CDR_REFUSED" A3
  fi
  finish_run 0
}

main "$@"
