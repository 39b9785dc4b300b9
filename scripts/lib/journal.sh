# shellcheck shell=bash
# journal.sh — the resumable step runner of the runbooks.
#
# A runbook is a list of steps; each step calls one of our tools. Every step
# appends NDJSON records to $CDR_STATE_DIR/journal.ndjson: `started` before it
# acts, then `done` (with the values it found, e.g. tRecovery) or `failed`
# (with the exit code and the error). A rerun reads the journal, skips every
# step whose last record is `done` (reusing its values: a value read before
# the restore is never read again after it), and runs the first unfinished
# step again. A step interrupted after `started` is run again; every step is
# idempotent, so a mutation that had finished is not repeated by the tool.
#
# Record shape (one line each; keys in this order):
#   {"type":"step","runbook":R,"step":"A2","title":…,"status":"done","at":T,
#    "runId":…,"attempt":1,"dryRun":false,"values":{…},"commands":[…],
#    "exitCode":0,"error":null,"hint":null,"output":{…}}
#   {"type":"run","runbook":R,"status":"started"|"done","at":T,"runId":…,
#    "actor":"user@host","options":{…}}
#
# Step functions: `cdr_step STEP TITLE FUNCTION`. FUNCTION runs the step (or,
# when CDR_DRY_RUN=1, only plans it) and sets
#   STEP_VALUES  JSON object of values to keep (default {})
#   STEP_OUTPUT  JSON of the tool's result (default null)
#   STEP_NOTE    a sentence for the reader (optional)
#   STEP_ERROR / STEP_HINT  on failure
# and returns the exit code to propagate. Tools run through `cdr_tool`.
#
# Failpoints for tests (never set them in production):
#   CANTON_DR_FAILPOINT=STEP:before   SIGKILL right after `started` is written
#   CANTON_DR_FAILPOINT=STEP:after    SIGKILL after the step acted, before `done`
#   CANTON_DR_FAILPOINT=STEP:fail     the step fails (exit 3) without acting
#   CANTON_DR_FAILPOINT=STEP:interrupt  SIGINT (as Ctrl-C) after the step acted
# (a comma-separated list of these is allowed).

CDR_DRY_RUN=${CDR_DRY_RUN:-0}
CDR_RUN_ID="$(date -u +%Y%m%dT%H%M%S)-$$-${RANDOM}"
CDR_CURRENT_STEP=""
CDR_CURRENT_TITLE=""
CDR_CURRENT_ATTEMPT=0
CDR_COMMANDS=()

# Names the journal of $CDR_STATE_DIR, to read it before journal_open (an
# absent journal reads as empty). Creates nothing.
journal_locate() {
  CDR_JOURNAL="$CDR_STATE_DIR/journal.ndjson"
  CDR_OUT_DIR="$CDR_STATE_DIR/outputs"
  if [[ -e "$CDR_JOURNAL" ]] && ! jq -e -s 'true' "$CDR_JOURNAL" >/dev/null 2>&1; then
    cdr_die "the journal $CDR_JOURNAL is not NDJSON" "move it away and start in a fresh --state-dir" "$CDR_USAGE"
  fi
}

# Opens (creating) the state directory and its journal, and takes its lock so
# that two runs never interleave. A dry run creates nothing.
journal_open() {
  journal_locate
  if [[ "$CDR_DRY_RUN" -eq 1 ]]; then
    # A dry run writes nothing into the state directory: tool outputs go to
    # a scratch directory that is removed on exit.
    CDR_OUT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/canton-dr-dry-run.XXXXXX")
    # shellcheck disable=SC2064 # expand now: the path is fixed
    trap "rm -rf '$CDR_OUT_DIR'" EXIT
    [[ -f "$CDR_JOURNAL" ]] || CDR_JOURNAL=""
    return 0
  fi
  if ! mkdir -p "$CDR_OUT_DIR" 2>/dev/null; then
    cdr_die "cannot create the state directory $CDR_STATE_DIR" \
      "pass a --state-dir you can write (it holds the journal of this restore)" "$CDR_USAGE"
  fi
  chmod 700 "$CDR_STATE_DIR" 2>/dev/null || true
  exec 9>>"$CDR_STATE_DIR/lock"
  if ! flock -n 9; then
    cdr_die "another run holds $CDR_STATE_DIR/lock" \
      "wait for it to finish (or end it), then rerun: the journal continues where it stopped" "$CDR_REFUSED"
  fi
  touch "$CDR_JOURNAL"
}

# Refuses a journal of the other runbook.
journal_check_runbook() {
  journal_exists || return 0
  local other
  other=$(grep -o '^{"type":"run","runbook":"[^"]*"' "$CDR_JOURNAL" | grep -v -F "\"$CDR_RUNBOOK\"" | head -n 1 || true)
  other=${other##*:}
  other=${other//\"/}
  [[ -z "$other" ]] || cdr_die "$CDR_STATE_DIR holds the journal of runbook '$other', not '$CDR_RUNBOOK'" \
    "use a separate --state-dir per runbook" "$CDR_USAGE"
}

# Whether a journal with records exists.
journal_exists() { [[ -s "${CDR_JOURNAL:-}" ]]; }

# Appends one record (a JSON object on one line) and flushes it to disk.
journal_append() {
  [[ "$CDR_DRY_RUN" -eq 1 ]] && return 0
  printf '%s\n' "$1" >>"$CDR_JOURNAL"
  sync "$CDR_JOURNAL" 2>/dev/null || true
}

# The journal is written only by step_record and run records below, compact
# and with keys in a fixed order, so that grep finds records without a JSON
# parser (jq costs a process start each time).

# The last record of STEP (empty when the step never started).
journal_last() {
  journal_exists || return 0
  grep -F "{\"type\":\"step\",\"runbook\":\"$CDR_RUNBOOK\",\"step\":\"$1\"," "$CDR_JOURNAL" | tail -n 1 || true
}

# The status of a step record: done, started, failed, planned.
record_status() {
  [[ "$1" =~ ^\{\"type\":\"step\",\"runbook\":\"[^\"]*\",\"step\":\"[^\"]*\",\"title\":\"[^\"]*\",\"status\":\"([a-z]+)\" ]] &&
    echo "${BASH_REMATCH[1]}"
}

# The status of STEP's last record: done, started, failed, or empty.
journal_status() {
  local last
  last=$(journal_last "$1")
  [[ -z "$last" ]] || record_status "$last"
}

# The options of the first run of this journal ({} without one).
journal_first_options() {
  local o=""
  if journal_exists; then
    o=$(grep -m 1 -F '{"type":"run","runbook":' "$CDR_JOURNAL" || true)
    [[ -z "$o" ]] || o=$(jq -c '.options // {}' <<<"$o")
  fi
  echo "${o:-{\}}"
}

# Every value the done steps recorded, merged (later steps win).
journal_values() {
  if journal_exists; then
    jq -cs '[.[] | select(.type == "step" and .status == "done") | .values] | add // {}' "$CDR_JOURNAL"
  else
    echo '{}'
  fi
}

# The `output` recorded by the done STEP (`null` when none), as JSON.
journal_output() {
  local last
  last=$(journal_last "$1")
  if [[ "$(record_status "$last")" == "done" ]]; then
    jq -c '.output' <<<"$last"
  else
    echo null
  fi
}

# Whether the journal says the whole runbook finished.
journal_finished() {
  journal_exists && grep -q -F "{\"type\":\"run\",\"runbook\":\"$CDR_RUNBOOK\",\"status\":\"done\"" "$CDR_JOURNAL"
}

# Whether STEP was done by an earlier invocation (not this one).
journal_done_before_this_run() {
  local last
  last=$(journal_last "$1")
  [[ "$(record_status "$last")" == "done" && "$last" != *"\"runId\":\"$CDR_RUN_ID\""* ]]
}

# Prints a step record to stdout (JSON) or a line (text).
emit_record() {
  local rec=$1
  if [[ "$CDR_OUTPUT" == json ]]; then
    printf '%s\n' "$rec" >&3
  else
    jq -r '
      def v: if type == "string" then . else tojson end;
      "\(.step)  \(.status | ascii_upcase)  \(.title)"
      + (if (.values // {}) == {} then "" else "\n      " + ([.values | to_entries[] | "\(.key)=\(.value | v)"] | join("\n      ")) end)
      + (if .note then "\n      (\(.note))" else "" end)
      + (if .error then "\n      error: \(.error)" else "" end)
      + (if .hint then "\n      hint: \(.hint)" else "" end)' <<<"$rec" >&3
  fi
}

# A JSON string literal of $1 (pure bash: this runs a dozen times per step).
json_str() {
  local LC_ALL=C s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  s=${s//[$'\x01'-$'\x1f']/ }
  printf '"%s"' "$s"
}

# A JSON string, or null for an empty $1.
json_str_or_null() {
  if [[ -z "$1" ]]; then printf null; else json_str "$1"; fi
}

# Builds a step record (keys in the fixed order the greps above rely on).
#   step_record STATUS [EXIT_CODE]
step_record() {
  local status=$1 code=${2:-null} commands="" c dry=false
  for c in "${CDR_COMMANDS[@]}"; do
    commands+="${commands:+,}$(json_str "$c")"
  done
  [[ "$CDR_DRY_RUN" -eq 1 ]] && dry=true
  printf '{"type":"step","runbook":%s,"step":%s,"title":%s,"status":%s,"at":%s,"runId":%s,"attempt":%s,"dryRun":%s,"values":%s,"commands":[%s],"exitCode":%s,"error":%s,"hint":%s,"output":%s%s}' \
    "$(json_str "$CDR_RUNBOOK")" "$(json_str "$CDR_CURRENT_STEP")" "$(json_str "${CDR_CURRENT_TITLE//\"/\'}")" \
    "$(json_str "$status")" "$(json_str "$(cdr_now)")" "$(json_str "$CDR_RUN_ID")" "$CDR_CURRENT_ATTEMPT" "$dry" \
    "${STEP_VALUES:-{\}}" "$commands" "$code" "$(json_str_or_null "${STEP_ERROR:-}")" \
    "$(json_str_or_null "${STEP_HINT:-}")" "${STEP_OUTPUT:-null}" \
    "$([[ -z "${STEP_NOTE:-}" ]] || printf ',"note":%s' "$(json_str "$STEP_NOTE")")"
}

# Applies a failpoint for STEP at POINT (before, after, fail); returns 1 for `fail`.
failpoint() {
  local step=$1 point=$2 fp
  [[ -n "${CANTON_DR_FAILPOINT:-}" ]] || return 0
  IFS=, read -ra fp <<<"$CANTON_DR_FAILPOINT"
  local f
  for f in "${fp[@]}"; do
    [[ "$f" == "$step:$point" ]] || continue
    case $point in
    before | after)
      cdr_warn "failpoint $f: killing this run (SIGKILL)"
      kill -9 $$
      ;;
    interrupt)
      cdr_warn "failpoint $f: interrupting this run (SIGINT)"
      kill -INT $$
      ;;
    fail) return 1 ;;
    esac
  done
  return 0
}

# Runs STEP (see the header). Exits with the step's code when it fails.
# CDR_STEP_RAN says whether it ran (1) or was done earlier (0).
#   cdr_step STEP TITLE FUNCTION
cdr_step() {
  local step=$1 title=$2 fn=$3 last status rc=0
  STEP_VALUES='{}'
  last=$(journal_last "$step")
  status=""
  [[ -z "$last" ]] || status=$(record_status "$last")
  CDR_STEP_RAN=0
  if [[ "$status" == "done" ]]; then
    local at=${last#*\"at\":\"}
    cdr_log "$step $title: done earlier (${at%%\"*}); not repeated"
    emit_record "${last%\}},\"fromJournal\":true}"
    return 0
  fi
  CDR_CURRENT_STEP=$step
  CDR_CURRENT_TITLE=$title
  CDR_COMMANDS=()
  STEP_VALUES='{}'
  STEP_OUTPUT=null
  STEP_ERROR=""
  STEP_HINT=""
  STEP_NOTE=""
  CDR_STEP_RAN=1
  if [[ "$CDR_DRY_RUN" -eq 1 ]]; then
    CDR_CURRENT_ATTEMPT=0
    "$fn" || rc=$?
    if [[ "$rc" -ne 0 ]]; then
      emit_record "$(step_record failed "$rc")"
      finish_run "$rc"
    fi
    emit_record "$(step_record planned 0)"
    CDR_CURRENT_STEP=""
    return 0
  fi
  # Each attempt writes `started` first: count the step's started records.
  CDR_CURRENT_ATTEMPT=$(($(grep -c -F "{\"type\":\"step\",\"runbook\":\"$CDR_RUNBOOK\",\"step\":\"$step\",\"title\":$(json_str "${title//\"/\'}"),\"status\":\"started\"" \
    "$CDR_JOURNAL" || true) + 1))
  if [[ -n "$status" ]]; then
    cdr_log "$step $title: its last run ended '$status'; running it again (attempt $CDR_CURRENT_ATTEMPT)"
  else
    cdr_log "$step $title"
  fi
  journal_append "$(step_record started)"
  failpoint "$step" before
  if failpoint "$step" fail; then
    "$fn" || rc=$?
  else
    rc=$CDR_TRANSIENT
    STEP_ERROR="failpoint $step:fail"
  fi
  if [[ "$rc" -ne 0 ]]; then
    [[ -n "$STEP_ERROR" ]] || STEP_ERROR="step $step failed (exit $rc)"
    local rec
    rec=$(step_record failed "$rc")
    journal_append "$rec"
    emit_record "$rec"
    cdr_log "$step failed (exit $rc): $STEP_ERROR"
    [[ -z "$STEP_HINT" ]] || cdr_log "hint: $STEP_HINT"
    finish_run "$rc" "$step"
  fi
  failpoint "$step" after
  failpoint "$step" interrupt
  local rec
  rec=$(step_record "done" 0)
  journal_append "$rec"
  emit_record "$rec"
  CDR_CURRENT_STEP=""
}

# Runs a tool for the current step: stdout (JSON or NDJSON) to a file under
# outputs/, stderr through. Sets TOOL_RESULT (the last line that is not a
# progress/waiting event, or {} when none) and returns the tool's exit code.
# On failure sets STEP_ERROR and STEP_HINT from the tool's JSON error.
#   cdr_tool [--stdin JSON] TOOL-PATH ARGS...
cdr_tool() {
  local stdin_json=""
  if [[ "$1" == --stdin ]]; then
    stdin_json=$2
    shift 2
  fi
  local name out rc=0
  name=$(basename "$1")
  CDR_COMMANDS+=("$(cdr_quote "$name" "${@:2}")")
  out="$CDR_OUT_DIR/$CDR_CURRENT_STEP.$CDR_CURRENT_ATTEMPT.$name.ndjson"
  # fd 3 (our stdout) and 9 (the lock) are not the tool's: a process that
  # outlived us would hold the lock and keep our reader waiting.
  if [[ -n "$stdin_json" ]]; then
    CANTON_DR_OUTPUT=json "$@" <<<"$stdin_json" >"$out" 3>&- 9>&- || rc=$?
  else
    CANTON_DR_OUTPUT=json "$@" </dev/null >"$out" 3>&- 9>&- || rc=$?
  fi
  # The result is the last line that is not an event of a wait; the tools
  # print compact single-line JSON.
  TOOL_RESULT=$(grep -v -e '"type":"progress"' -e '"type":"waiting"' -e '"type":"warning"' "$out" | tail -n 1 || true)
  [[ "$TOOL_RESULT" == "{"* ]] || TOOL_RESULT='{}'
  if [[ "$rc" -ne 0 ]]; then
    local err hint
    { IFS= read -r err; IFS= read -r hint; } < <(jq -r '(.error // ""), (.hint // "")' <<<"$TOOL_RESULT" 2>/dev/null || true)
    STEP_ERROR="$name: ${err:-$name failed (exit $rc)}"
    STEP_HINT=${hint:-}
  fi
  return "$rc"
}

# Writes the `run started` record (not in a dry run).
#   run_started OPTIONS-JSON
run_started() {
  journal_append "$(printf '{"type":"run","runbook":%s,"status":"started","at":%s,"runId":%s,"actor":%s,"options":%s}' \
    "$(json_str "$CDR_RUNBOOK")" "$(json_str "$(cdr_now)")" "$(json_str "$CDR_RUN_ID")" "$(json_str "$(cdr_actor)")" "$1")"
}

# Ends the run: the `result` line on stdout (with every value the journal
# holds), a `run done` record when everything succeeded, and the exit code.
#   finish_run CODE [FAILED-STEP]
finish_run() {
  local code=$1 failed=${2:-} values result
  values=$(journal_values)
  if [[ "$code" -eq 0 && "$CDR_DRY_RUN" -eq 0 ]] && ! journal_finished; then
    journal_append "$(printf '{"type":"run","runbook":%s,"status":"done","at":%s,"runId":%s,"actor":%s,"values":%s}' \
      "$(json_str "$CDR_RUNBOOK")" "$(json_str "$(cdr_now)")" "$(json_str "$CDR_RUN_ID")" "$(json_str "$(cdr_actor)")" "$values")"
  fi
  result=$(jq -cn --arg rb "$CDR_RUNBOOK" --arg s "$(cdr_status_word "$code")" --argjson c "$code" \
    --arg failed "$failed" --arg error "${STEP_ERROR:-}" --arg hint "${STEP_HINT:-}" \
    --argjson dry "$([[ "$CDR_DRY_RUN" -eq 1 ]] && echo true || echo false)" \
    --arg journal "${CDR_JOURNAL:-}" --argjson v "$values" \
    '{type: "result", runbook: $rb, status: $s, exitCode: $c, dryRun: $dry,
      failedStep: (if $failed == "" then null else $failed end),
      error: (if $c == 0 or $error == "" then null else $error end),
      hint: (if $c == 0 or $hint == "" then null else $hint end),
      journal: (if $dry then null else $journal end), values: $v}')
  if [[ "$CDR_OUTPUT" == json ]]; then
    printf '%s\n' "$result" >&3
  else
    jq -r '"result: \(.status)" + (if .failedStep then " at \(.failedStep)" else "" end)
      + (if .journal then " (journal: \(.journal))" else "" end)' <<<"$result" >&3
  fi
  exit "$code"
}

# Ctrl-C / SIGTERM during a step: record it as failed (interrupted) and stop.
on_interrupt() {
  local sig=$1 code=130
  [[ "$sig" == TERM ]] && code=143
  trap - INT TERM
  if [[ -n "$CDR_CURRENT_STEP" && "$CDR_DRY_RUN" -eq 0 ]]; then
    STEP_ERROR="interrupted by SIG$sig"
    STEP_HINT="rerun the same command: it continues with this step"
    journal_append "$(step_record failed "$code")"
  fi
  cdr_log "interrupted (SIG$sig); rerun the same command to continue"
  exit "$code"
}
