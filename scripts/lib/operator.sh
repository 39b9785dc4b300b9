# shellcheck shell=bash
# operator.sh — the one step of each runbook that is the operator's own
# procedure: restoring the validator node (A3) or the Integration DB (B2).
#
# Three ways to get it done, in this order:
#   1. --restore-cmd CMD: run `bash -c CMD` (its stdout goes to stderr, and it
#      inherits neither our stdout nor the state directory's lock; the
#      environment carries CANTON_DR_RUNBOOK, CANTON_DR_STEP,
#      CANTON_DR_STATE_DIR and whatever the runbook exported). A failure is
#      exit 3; the rerun runs the command again, so it must be rerunnable
#      (restoring the same backup twice is harmless at that point: nothing
#      after the restore has run yet).
#   2. stdin is a terminal: prompt; the operator restores by hand and types
#      "restored" (or "abort", exit 5).
#   3. --yes: confirms that the operator restored it after the steps before
#      it had run. Only accepted when those steps were done by an EARLIER
#      invocation: a restore before ingestion was stopped (runbook A) or
#      before withdrawals were frozen (runbook B) breaks the runbook.
# Otherwise the step is refused (exit 5) and the rerun continues here.

CDR_RESTORE_CMD=${CDR_RESTORE_CMD:-}
CDR_YES=${CDR_YES:-0}
# Set in a dry run when the real run would be refused; the plan goes on and
# the run ends with exit 5.
CDR_PREDICTED_REFUSAL=""

# Does (or, in a dry run, plans) the operator's restore.
#   operator_restore PREVIOUS-STEP WHAT INSTRUCTIONS
operator_restore() {
  local prev=$1 what=$2 instructions=$3 rc=0 started elapsed refusal=""
  if [[ -n "$CDR_RESTORE_CMD" ]]; then
    CDR_COMMANDS+=("$CDR_RESTORE_CMD")
    if [[ "$CDR_DRY_RUN" -eq 1 ]]; then
      STEP_VALUES=$(jq -cn --arg c "$CDR_RESTORE_CMD" '{restoreMethod: "restore-cmd", restoreCmd: $c}')
      return 0
    fi
    cdr_log "running the restore command: $CDR_RESTORE_CMD"
    started=$(date +%s)
    CANTON_DR_RUNBOOK=$CDR_RUNBOOK CANTON_DR_STEP=$CDR_CURRENT_STEP CANTON_DR_STATE_DIR=$CDR_STATE_DIR \
      bash -c "$CDR_RESTORE_CMD" >&2 3>&- 9>&- || rc=$?
    elapsed=$(($(date +%s) - started))
    if [[ "$rc" -ne 0 ]]; then
      STEP_ERROR="the restore command failed (exit $rc) after ${elapsed}s"
      STEP_HINT="fix the cause, then rerun the same command: $CDR_CURRENT_STEP runs the restore command again"
      STEP_VALUES=$(jq -cn --arg c "$CDR_RESTORE_CMD" --argjson rc "$rc" \
        '{restoreMethod: "restore-cmd", restoreCmd: $c, restoreCmdExitCode: $rc}')
      return "$CDR_TRANSIENT"
    fi
    STEP_VALUES=$(jq -cn --arg c "$CDR_RESTORE_CMD" --argjson s "$elapsed" \
      '{restoreMethod: "restore-cmd", restoreCmd: $c, restoreCmdExitCode: 0, restoreSeconds: $s}')
    return 0
  fi

  if cdr_stdin_is_tty && [[ "$CDR_YES" -ne 1 ]]; then
    if [[ "$CDR_DRY_RUN" -eq 1 ]]; then
      STEP_VALUES='{"restoreMethod":"prompt"}'
      return 0
    fi
    local answer
    {
      echo
      echo "== $CDR_CURRENT_STEP: $what (your procedure) =="
      echo "$instructions"
      echo
    } >&2
    while true; do
      printf 'Type "restored" once it is done, or "abort" to stop here: ' >&2
      if ! IFS= read -r answer; then
        answer=abort
      fi
      case $answer in
      restored)
        STEP_VALUES=$(jq -cn --arg by "$(cdr_actor)" '{restoreMethod: "prompt", restoreConfirmedBy: $by}')
        return 0
        ;;
      abort)
        STEP_ERROR="aborted at the prompt: $what not confirmed"
        STEP_HINT="rerun the same command when you are ready: it continues with $CDR_CURRENT_STEP"
        return "$CDR_REFUSED"
        ;;
      esac
    done
  fi

  if [[ "$CDR_YES" -eq 1 ]]; then
    if journal_done_before_this_run "$prev"; then
      STEP_VALUES=$(jq -cn --arg by "$(cdr_actor)" '{restoreMethod: "yes", restoreConfirmedBy: $by}')
      return 0
    fi
    if [[ "$CDR_DRY_RUN" -eq 1 && "$(journal_status "$prev")" != "done" ]]; then
      refusal="--yes confirms a restore done after $prev; $prev has not run yet, so the real run would stop before $CDR_CURRENT_STEP"
    else
      refusal="--yes confirms a restore you did after $prev had run, but $prev ran in this same invocation"
    fi
    STEP_HINT="$what now, then rerun with --yes (or pass --restore-cmd)"
  else
    refusal="$CDR_CURRENT_STEP ($what) is the operator's, and stdin is not a terminal to ask on"
    STEP_HINT="pass --restore-cmd CMD, run on a terminal to be prompted, or do it yourself and rerun with --yes"
  fi
  if [[ "$CDR_DRY_RUN" -eq 1 ]]; then
    CDR_PREDICTED_REFUSAL=$refusal
    STEP_VALUES=$(jq -cn --arg r "$refusal" '{restoreMethod: "refused", wouldRefuse: $r}')
    STEP_HINT=""
    return 0
  fi
  STEP_ERROR="refused: $refusal"
  return "$CDR_REFUSED"
}
