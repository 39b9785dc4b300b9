#!/usr/bin/env bash
# restore-integration-db.sh — runbook B: restore the Canton Integration DB from
# a backup without paying a withdrawal twice (docs/runbook-integration-db-restore.md).
#
#   WITHDRAWAL_TTL=1h scripts/restore-integration-db.sh --state-dir /var/lib/canton-dr/inc-43 \
#     --reason 'restore INC-43' --stop-cmd 'systemctl stop wd-automation' \
#     --start-cmd 'systemctl start wd-automation' \
#     --restore-cmd '/opt/ops/restore-integration-db.sh /backups/integration-20250101T0400Z.dump'
#
# Steps (each calls one tool and is journaled in --state-dir):
#   B1 disable new withdrawals, stop Withdrawal Automation    withdrawal-gate freeze, tsafe
#      (tSafe of the DB before the restore is kept: it knows requests the restore loses)
#   B2 restore the Integration DB (yours: --restore-cmd, a prompt on a terminal,
#      or --yes after you restored it). The restored gate is open again: the
#      restore command gets CANTON_DR_FREEZE_CMD in its environment, to run
#      right after the data is back and before Internal Systems reconnect
#   B3 freeze the restored DB's gate again (the backup holds it open), then wait
#      until ingestion passed tSafe = the later of the tSafe before and after the
#      restore (in-flight trecTgt, freeze + ttl)                withdrawal-gate freeze, tsafe, wait
#   B4 enable withdrawals and Withdrawal Automation           withdrawal-gate thaw
#
# Requests lost in the restore are covered by frozen_at + ttl: nothing was
# created after the freeze. Ingestion re-creates the withdrawals it sees on
# the ledger whose requests are gone, marked `recovered` (B3's report lists them).
# A rerun with the same --state-dir continues at the first unfinished step.
# The journal lives in --state-dir, outside the database being restored.
#
# Options (each also from the environment variable in brackets):
#   --state-dir DIR        journal and tool outputs of this restore [CANTON_DR_STATE_DIR]
#   --reason TEXT          why (recorded with the freeze) [CANTON_DR_REASON]
#   --ttl D                the constant ttl of withdrawal requests (trecTgt = request + ttl) [WITHDRAWAL_TTL]
#   --restore-cmd CMD      your DB restore, run by `bash -c` in B2 [CANTON_DR_RESTORE_CMD]
#   --yes                  confirm that you restored the DB yourself after B1 ran [CANTON_DR_YES=1]
#   --stop-cmd CMD         stops Withdrawal Automation in B1 [WITHDRAWAL_GATE_STOP_CMD]
#   --start-cmd CMD        starts it again in B4 [WITHDRAWAL_GATE_START_CMD]
#   --db-lost              the Integration DB is gone: B1 only runs --stop-cmd (the gate
#                          cannot be written), the freeze happens in the restored DB [CANTON_DR_DB_LOST=1]
#   --wait-timeout D       B3's wait (default 6h) [CANTON_DR_WAIT_TIMEOUT]
#   --db-url URL           Integration DB, without a password (PGPASSWORD, or the whole
#                          URL in INTEGRATION_DB_URL) [INTEGRATION_DB_URL]
#   --schema NAME          Integration DB schema [INTEGRATION_DB_SCHEMA]
#   --ingester NAME        the ingester whose checkpoint counts [INGESTER_NAME]
#   --gate NAME            the withdrawal gate [WITHDRAWAL_GATE_NAME]
#   --bin-dir DIR          where the tools are [CANTON_DR_BIN_DIR]
#   --output json|text     stdout format (default: json unless a terminal) [CANTON_DR_OUTPUT]
#   --dry-run              print the plan with the values it would use; change nothing
# Other settings (WITHDRAWAL_GATE_SKEW_MARGIN, PG*, ...) pass through the
# environment. No secret is ever put on a command line.
#
# Output: one JSON record per step on stdout (as in the journal), then
# {"type":"result","status":…,"exitCode":…,"values":{frozenAt,tSafe,…}}.
# Exit codes: 0 done; 1 a --stop-cmd/--start-cmd hook failed (the gate change is
# done; rerun); 2 usage or configuration; 3 a tool or the restore command failed
# (rerun); 4 B3's wait timed out (rerun to keep waiting); 5 refused for safety
# (restore not confirmed, thaw before tSafe).
# shellcheck disable=SC2317 # the step functions are called indirectly, by cdr_step
set -euo pipefail
shopt -s inherit_errexit

CDR_PROG=restore-integration-db
# shellcheck source=lib/common.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib/common.sh"
# shellcheck source=lib/journal.sh
source "$CDR_LIB_DIR/journal.sh"
# shellcheck source=lib/operator.sh
source "$CDR_LIB_DIR/operator.sh"

readonly CDR_RUNBOOK=integration-db-restore

truthy() { case ${1:-} in 1 | true | yes) return 0 ;; *) return 1 ;; esac }

parse_args() {
  CDR_STATE_DIR=${CANTON_DR_STATE_DIR:-}
  REASON=${CANTON_DR_REASON:-}
  TTL=${WITHDRAWAL_TTL:-}
  CDR_RESTORE_CMD=${CANTON_DR_RESTORE_CMD:-}
  STOP_CMD=${WITHDRAWAL_GATE_STOP_CMD:-}
  START_CMD=${WITHDRAWAL_GATE_START_CMD:-}
  WAIT_TIMEOUT=${CANTON_DR_WAIT_TIMEOUT:-6h}
  CDR_YES=0
  truthy "${CANTON_DR_YES:-}" && CDR_YES=1
  DB_LOST=0
  truthy "${CANTON_DR_DB_LOST:-}" && DB_LOST=1
  local output=${CANTON_DR_OUTPUT:-}
  # The hooks are passed where they belong, never picked up from the
  # environment by another step's tool.
  unset WITHDRAWAL_GATE_STOP_CMD WITHDRAWAL_GATE_START_CMD WITHDRAWAL_GATE_DRY_RUN \
    WITHDRAWAL_GATE_FORCE WITHDRAWAL_GATE_YES WITHDRAWAL_GATE_TSAFE
  while [[ $# -gt 0 ]]; do
    case $1 in
    --state-dir) CDR_STATE_DIR=${2:?$1 needs a directory}; shift 2 ;;
    --reason) REASON=${2:?$1 needs a text}; shift 2 ;;
    --ttl) TTL=${2:?$1 needs a duration}; shift 2 ;;
    --restore-cmd) CDR_RESTORE_CMD=${2:?$1 needs a command}; shift 2 ;;
    --yes) CDR_YES=1; shift ;;
    --stop-cmd) STOP_CMD=${2:?$1 needs a command}; shift 2 ;;
    --start-cmd) START_CMD=${2:?$1 needs a command}; shift 2 ;;
    --db-lost) DB_LOST=1; shift ;;
    --wait-timeout) WAIT_TIMEOUT=${2:?$1 needs a duration}; shift 2 ;;
    --db-url) cdr_set_db_url "${2:?$1 needs a URL}"; shift 2 ;;
    --schema) export INTEGRATION_DB_SCHEMA=${2:?$1 needs a name}; shift 2 ;;
    --ingester) export INGESTER_NAME=${2:?$1 needs a name}; shift 2 ;;
    --gate) export WITHDRAWAL_GATE_NAME=${2:?$1 needs a name}; shift 2 ;;
    --bin-dir) export CANTON_DR_BIN_DIR=${2:?$1 needs a directory}; shift 2 ;;
    --output) output=${2:?$1 needs json or text}; shift 2 ;;
    --dry-run) CDR_DRY_RUN=1; shift ;;
    -h | --help) cdr_usage "${BASH_SOURCE[0]}" ;;
    *) cdr_die "unknown argument '$1'" "see: restore-integration-db.sh --help" "$CDR_USAGE" ;;
    esac
  done
  CDR_OUTPUT=$(cdr_output_format "$output")
  [[ -n "$CDR_STATE_DIR" ]] ||
    cdr_die "--state-dir is required" "name a directory for this restore's journal, e.g. /var/lib/canton-dr/INC-43" "$CDR_USAGE"
  cdr_duration "$WAIT_TIMEOUT" "--wait-timeout" >/dev/null
}

# Options that shape the restore: from the flags, else from the first run.
reconcile_options() {
  local j_reason j_ttl j_lost
  { IFS= read -r j_reason; IFS= read -r j_ttl; IFS= read -r j_lost; } < <(jq -r \
    '(.reason // "" | gsub("\n"; " ")), (.ttl // ""), (.dbLost // false)' <<<"$JOURNAL_OPTIONS")
  [[ -n "$REASON" ]] || REASON=$j_reason
  if [[ -n "$TTL" && -n "$j_ttl" && "$TTL" != "$j_ttl" ]]; then
    cdr_die "this restore was started with --ttl $j_ttl, not $TTL" \
      "rerun with the same --ttl (a shorter one would let lost requests through)" "$CDR_USAGE"
  fi
  [[ -n "$TTL" ]] || TTL=$j_ttl
  if [[ "$j_lost" == true ]]; then
    DB_LOST=1
  fi
  [[ -n "$REASON" ]] || cdr_die "--reason is required" \
    "say why, e.g. --reason 'restore INC-43' (it is recorded with the freeze)" "$CDR_USAGE"
  [[ -n "$TTL" ]] || cdr_die "the withdrawal ttl is unknown" \
    "pass --ttl D (or WITHDRAWAL_TTL): the constant ttl your Internal Systems add to compute trecTgt; it bounds the requests the restore loses" "$CDR_USAGE"
  export WITHDRAWAL_TTL=$TTL
}

run_options() {
  jq -cn --arg reason "$REASON" --arg ttl "$TTL" --argjson lost "$([[ "$DB_LOST" -eq 1 ]] && echo true || echo false)" \
    --arg ing "${INGESTER_NAME:-tx-ingest}" --arg schema "${INTEGRATION_DB_SCHEMA:-canton_integration}" \
    --arg gate "${WITHDRAWAL_GATE_NAME:-cn-withdrawals}" \
    '{reason: $reason, ttl: $ttl, dbLost: $lost, ingester: $ing, schema: $schema, gate: $gate}'
}

# --- the steps -------------------------------------------------------------

step_b1() {
  if [[ "$DB_LOST" -eq 1 ]]; then
    # The gate lives in the lost DB: only the automation can be stopped now.
    local rc=0
    STEP_NOTE="--db-lost: the gate is frozen in the restored database (B3); until then nothing can create withdrawals in the lost one"
    if [[ -n "$STOP_CMD" ]]; then
      CDR_COMMANDS+=("$STOP_CMD")
      if [[ "$CDR_DRY_RUN" -eq 0 ]]; then
        WITHDRAWAL_GATE_ACTION=freeze bash -c "$STOP_CMD" </dev/null >&2 3>&- 9>&- || rc=$?
      fi
    fi
    STEP_VALUES=$(jq -cn --argjson rc "$rc" '{dbLost: true, frozenAt: null, preRestoreTSafe: null, stopCmdExitCode: $rc}')
    if [[ "$rc" -ne 0 ]]; then
      STEP_ERROR="the stop command failed (exit $rc)"
      STEP_HINT="fix it and rerun: B1 runs it again"
      return "$CDR_FALSE"
    fi
    return 0
  fi
  local args=(freeze --reason "$REASON" --ttl "$TTL")
  [[ -z "$STOP_CMD" ]] || args+=(--stop-cmd "$STOP_CMD")
  [[ "$CDR_DRY_RUN" -eq 1 ]] && args+=(--dry-run)
  cdr_tool "$GATE" "${args[@]}" || return
  local freeze=$TOOL_RESULT
  cdr_tool "$GATE" tsafe || return
  STEP_OUTPUT=$(jq -cn --argjson f "$freeze" --argjson t "$TOOL_RESULT" '{freeze: $f, tsafe: $t}')
  STEP_VALUES=$(jq -cn --argjson f "$freeze" --argjson t "$TOOL_RESULT" \
    '{dbLost: false, frozenAt: $f.frozenAt, frozenBy: $f.frozenBy, gateChanged: $f.changed,
      preRestoreTSafe: $t.tSafe, preRestoreWinner: $t.winner, preRestoreMaxTrecTgt: $t.maxTrecTgt,
      preRestoreInFlight: $t.inFlight}')
}

step_b2() {
  # The restored gate is open (the backup predates B1): the restore command
  # should run this before Internal Systems can reach the restored database.
  CANTON_DR_FREEZE_CMD=$(cdr_quote "$GATE" freeze --reason "$REASON (re-applied to the restored DB)" --ttl "$TTL")
  export CANTON_DR_FREEZE_CMD
  operator_restore B1 "restore the Integration DB from the backup" \
    "Withdrawals are frozen and Withdrawal Automation is stopped. Restore the Integration DB now
(e.g. pg_restore of the backup). The restored gate is open: before Exchange Internal Systems
can reach the restored database, freeze it again with
  $CANTON_DR_FREEZE_CMD
(B3 does it too, but only after you confirm). Make sure Tx History Ingestion runs."
}

# The later of two RFC 3339 UTC times of the same form (null-safe).
later() {
  jq -rn --arg a "$1" --arg b "$2" '[$a, $b] | map(select(. != "" and . != "null")) | max // ""'
}

step_b3() {
  if [[ "$CDR_DRY_RUN" -eq 1 && "$(journal_status B2)" != "done" ]]; then
    CDR_COMMANDS+=("$(cdr_quote withdrawal-gate freeze --reason "$REASON (re-applied to the restored DB)" --ttl "$TTL")")
    CDR_COMMANDS+=("withdrawal-gate tsafe")
    CDR_COMMANDS+=("$(cdr_quote withdrawal-gate wait --tsafe "<the later of B1's and the restored DB's tSafe>" --timeout "$WAIT_TIMEOUT")")
    STEP_VALUES=$(jq -c '{preRestoreTSafe}' <<<"$VALUES")
    STEP_NOTE="after the restore: re-freeze the restored gate, compute tSafe again, wait until ingestion passed the later tSafe"
    return 0
  fi
  local args=(freeze --reason "$REASON (re-applied to the restored DB)" --ttl "$TTL")
  [[ "$CDR_DRY_RUN" -eq 1 ]] && args+=(--dry-run)
  cdr_tool "$GATE" "${args[@]}" || return
  local refreeze=$TOOL_RESULT
  cdr_tool "$GATE" tsafe || return
  local post=$TOOL_RESULT pre t_safe source
  pre=$(jq -r '.preRestoreTSafe // ""' <<<"$VALUES")
  t_safe=$(later "$pre" "$(jq -r '.tSafe // ""' <<<"$post")")
  if [[ -z "$t_safe" ]]; then
    STEP_ERROR="tSafe is unknown"
    STEP_HINT="pass --ttl: without it the requests lost in the restore are not bounded"
    return "$CDR_USAGE"
  fi
  source=restored
  [[ "$t_safe" != "$pre" ]] || source=preRestore
  args=(wait --tsafe "$t_safe" --timeout "$WAIT_TIMEOUT")
  [[ "$CDR_DRY_RUN" -eq 1 ]] && args+=(--dry-run)
  local rc=0
  cdr_tool "$GATE" "${args[@]}" || rc=$?
  local out="$CDR_OUT_DIR/$CDR_CURRENT_STEP.$CDR_CURRENT_ATTEMPT.withdrawal-gate.ndjson" recon
  recon=$(jq -c 'select(.type == "reconciliation")' "$out" | tail -n 1)
  [[ -n "$recon" ]] || recon=null
  STEP_OUTPUT=$(jq -cn --argjson f "$refreeze" --argjson t "$post" --argjson w "$TOOL_RESULT" \
    '{refreeze: $f, tsafe: $t, wait: $w}')
  STEP_VALUES=$(jq -cn --argjson f "$refreeze" --argjson t "$post" --argjson w "$TOOL_RESULT" \
    --argjson r "$recon" --arg ts "$t_safe" --arg src "$source" \
    '{refrozenAt: $f.frozenAt, restoredGateWasFrozen: ($f.changed | not),
      restoredTSafe: $t.tSafe, restoredMaxTrecTgt: $t.maxTrecTgt, restoredInFlight: $t.inFlight,
      tSafe: $ts, tSafeFrom: $src, passed: $w.passed, checkpointRecordTime: $w.checkpointRecordTime,
      reconciliation: (if $r == null then null else $r.counts end),
      recoveredWithdrawals: (if $r == null then [] else [$r.recovered[]? | .withdrawalId // .id // .] end)}')
  return "$rc"
}

step_b4() {
  if [[ "$CDR_DRY_RUN" -eq 1 && "$(journal_status B3)" != "done" ]]; then
    CDR_COMMANDS+=("$(cdr_quote withdrawal-gate thaw ${START_CMD:+--start-cmd "$START_CMD"})")
    STEP_NOTE="opens the gate once ingestion passed tSafe (refused before), then runs --start-cmd"
    return 0
  fi
  local args=(thaw)
  [[ -z "$START_CMD" ]] || args+=(--start-cmd "$START_CMD")
  [[ "$CDR_DRY_RUN" -eq 1 ]] && args+=(--dry-run)
  local rc=0
  cdr_tool "$GATE" "${args[@]}" || rc=$?
  STEP_OUTPUT=$TOOL_RESULT
  STEP_VALUES=$(jq -c '{thawedAt, thawedBy, thawChanged: .changed, thawTSafe: .tSafe,
    startCmdOk: (if .hook == null then null else .hook.ok end)}' <<<"$TOOL_RESULT")
  return "$rc"
}

step() {
  cdr_step "$@"
  if [[ "$CDR_STEP_RAN" -eq 1 ]]; then
    VALUES=$(jq -c --argjson v "$STEP_VALUES" '. + $v' <<<"$VALUES")
  fi
}

main() {
  parse_args "$@"
  cdr_require_jq
  GATE=$(cdr_find_tool withdrawal-gate)
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
  reconcile_options
  journal_open
  journal_finished && finish_run 0
  trap 'on_interrupt INT' INT
  trap 'on_interrupt TERM' TERM
  [[ "$CDR_DRY_RUN" -eq 1 ]] || run_started "$(run_options)"
  VALUES=$(journal_values)

  step B1 "disable new withdrawals and stop Withdrawal Automation" step_b1
  step B2 "restore the Integration DB from the backup (operator)" step_b2
  step B3 "re-freeze the restored gate and wait until ingestion passed tSafe" step_b3
  step B4 "enable withdrawals and Withdrawal Automation" step_b4

  if [[ -n "$CDR_PREDICTED_REFUSAL" ]]; then
    STEP_ERROR="refused: $CDR_PREDICTED_REFUSAL"
    STEP_HINT="pass --restore-cmd CMD, run on a terminal, or restore the DB after B1 and rerun with --yes"
    finish_run "$CDR_REFUSED" B2
  fi
  finish_run 0
}

main "$@"
