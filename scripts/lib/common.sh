# shellcheck shell=bash
# common.sh — what every canton-dr bash script shares: messages and the exit
# codes of DESIGN.md, the one JSON error/result on stdout, finding the tools,
# RFC 3339 times and durations, secrets kept off argv, terminals.
#
# Source it after `set -euo pipefail`; set CDR_PROG to the script's name first.
# It opens fd 3 as the real stdout, so that a JSON line printed from inside
# $(...) still reaches the caller.

CDR_PROG=${CDR_PROG:-$(basename "$0" .sh)}
CDR_LIB_DIR=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
CDR_REPO=$(dirname "$(dirname "$CDR_LIB_DIR")")
exec 3>&1

# Exit codes (DESIGN.md).
readonly CDR_OK=0 CDR_FALSE=1 CDR_USAGE=2 CDR_TRANSIENT=3 CDR_TIMEOUT=4 CDR_REFUSED=5

# The `status` word that goes with an exit code, as every tool prints it.
cdr_status_word() {
  case $1 in
  0) echo ok ;;
  1) echo failed ;;
  2) echo usage-error ;;
  3) echo unavailable ;;
  4) echo timeout ;;
  5) echo refused ;;
  130) echo interrupted ;;
  *) echo error ;;
  esac
}

cdr_log() { printf '%s: %s\n' "$CDR_PROG" "$*" >&2; }
cdr_warn() { printf '%s: warning: %s\n' "$CDR_PROG" "$*" >&2; }

# Prints the one-line error (and hint) on stderr and, in JSON output mode
# (CDR_OUTPUT, else: stdout is not a terminal) unless CDR_NO_JSON_ERROR is
# set, the JSON error object on stdout; then exits with CODE (default 2).
#   cdr_die MESSAGE [HINT] [CODE]
cdr_die() {
  local msg=$1 hint=${2:-} code=${3:-2} mode=${CDR_OUTPUT:-}
  printf 'error: %s\n' "$msg" >&2
  [[ -z "$hint" ]] || printf 'hint: %s\n' "$hint" >&2
  if [[ -z "$mode" ]]; then
    if [[ -t 3 ]]; then mode=text; else mode=json; fi
  fi
  if [[ "$mode" == json && -z "${CDR_NO_JSON_ERROR:-}" ]] && command -v jq >/dev/null 2>&1; then
    jq -M -cn --arg e "$msg" --arg h "$hint" --argjson c "$code" --arg s "$(cdr_status_word "$code")" \
      '{type: "error", status: $s, exitCode: $c, error: $e} + (if $h == "" then {} else {hint: $h} end)' >&3 || true
  fi
  exit "$code"
}

# jq is how these scripts read the tools' JSON.
cdr_require_jq() {
  command -v jq >/dev/null 2>&1 ||
    CDR_NO_JSON_ERROR=1 cdr_die "jq is not installed; the runbooks read the tools' JSON with it" \
      "install it: apt-get install jq" "$CDR_USAGE"
}

# The path of workspace binary NAME: $CANTON_DR_BIN_DIR, else PATH, else the
# repository's target/release, then target/debug.
cdr_find_tool() {
  local name=$1 p
  if [[ -n "${CANTON_DR_BIN_DIR:-}" ]]; then
    p="$CANTON_DR_BIN_DIR/$name"
    [[ -x "$p" ]] || cdr_die "$name not found in CANTON_DR_BIN_DIR=$CANTON_DR_BIN_DIR" \
      "build the tools: cargo build --release --workspace --bins" "$CDR_USAGE"
    echo "$p"
    return
  fi
  if p=$(command -v "$name" 2>/dev/null); then
    echo "$p"
    return
  fi
  for p in "$CDR_REPO/target/release/$name" "$CDR_REPO/target/debug/$name"; do
    if [[ -x "$p" ]]; then
      echo "$p"
      return
    fi
  done
  cdr_die "$name not found on PATH, in CANTON_DR_BIN_DIR or in $CDR_REPO/target/{release,debug}" \
    "build the tools: cargo build --release --workspace --bins (or pass --bin-dir)" "$CDR_USAGE"
}

# Now, RFC 3339 UTC with exactly 6 fractional digits (Canton's record-time form).
cdr_now() { date -u +%Y-%m-%dT%H:%M:%S.%6NZ; }

# Epoch seconds of an RFC 3339 time; refuses the loose forms GNU date accepts.
#   cdr_epoch TIME WHAT
cdr_epoch() {
  local t=$1 what=$2 s
  [[ "$t" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}([.,][0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$ ]] ||
    cdr_die "$what '$t' is not an RFC 3339 time" "write it like 2025-01-01T04:00:00.123456Z" "$CDR_USAGE"
  s=$(date -u -d "${t/[Tt]/ }" +%s 2>/dev/null) ||
    cdr_die "$what '$t' is not a valid time" "write it like 2025-01-01T04:00:00.123456Z" "$CDR_USAGE"
  echo "$s"
}

# Seconds of a duration such as 90s, 5m, 2h, 30d (a bare number is seconds).
#   cdr_duration VALUE WHAT
cdr_duration() {
  local v=$1 what=$2 n unit
  [[ "$v" =~ ^([0-9]+)(s|m|h|d)?$ ]] ||
    cdr_die "$what '$v' is not a duration" "write it like 45s, 10m, 2h or 30d" "$CDR_USAGE"
  n=${BASH_REMATCH[1]}
  unit=${BASH_REMATCH[2]:-s}
  case $unit in
  s) echo "$n" ;;
  m) echo $((n * 60)) ;;
  h) echo $((n * 3600)) ;;
  d) echo $((n * 86400)) ;;
  esac
}

# A PostgreSQL URL or key=value string that carries a password: never on argv.
cdr_url_has_password() {
  [[ "$1" =~ ^postgres(ql)?://[^/@]*:[^/@]*@ ]] || [[ "$1" =~ (^|[[:space:]])password[[:space:]]*= ]]
}

# Exports --db-url for the tools (they read INTEGRATION_DB_URL), refusing a
# URL with a password: this script's own argv shows in `ps` too.
cdr_set_db_url() {
  if cdr_url_has_password "$1"; then
    cdr_die "--db-url carries a password, which would show in ps" \
      "put the password in PGPASSWORD, or the whole URL in INTEGRATION_DB_URL" "$CDR_USAGE"
  fi
  export INTEGRATION_DB_URL=$1
}

# Whether stdin is a terminal (prompts are allowed only then).
cdr_stdin_is_tty() { [[ -t 0 ]]; }

# `json` or `text` for --output VALUE ('' = json unless stdout is a terminal;
# fd 3 is the real stdout, also inside $(...)).
cdr_output_format() {
  case ${1:-} in
  json | text) echo "$1" ;;
  '') if [[ -t 3 ]]; then echo text; else echo json; fi ;;
  *) cdr_die "--output '$1' must be json or text" "" "$CDR_USAGE" ;;
  esac
}

# `user@host`, for the journal and the audit trail.
cdr_actor() { echo "$(id -un 2>/dev/null || echo unknown)@$(hostname 2>/dev/null || echo unknown)"; }

# A command line rendered for the journal and the plan, shell-quoted.
cdr_quote() {
  local out="" a
  for a in "$@"; do
    out+="${out:+ }$(printf '%q' "$a")"
  done
  echo "$out"
}

# Prints the comment block at the top of SCRIPT (its documentation) and exits 0.
cdr_usage() {
  awk 'NR > 1 && /^#/ && !/^# shellcheck/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$1"
  exit 0
}
