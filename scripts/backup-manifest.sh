#!/usr/bin/env bash
# backup-manifest.sh — records, right after the operator's backups, what a
# restore will need to know about them, in one JSON manifest (docs/backup-check.md):
#   - the validator-app dump and the participant dump (Splice: the app dump
#     must finish before the participant dump starts), the Integration DB dump
#     and, optionally, the identities dump: path, size, sha256, start and end
#     time of each;
#   - the node's DAR list at this moment (dar-sync diff --registry);
#   - the ingestion checkpoint at this moment (ingest-ctl status).
#
#   scripts/backup-manifest.sh --out-dir /backups/manifests \
#     --validator-app-dump /backups/validator-20250101T0400Z.dump \
#     --participant-dump /backups/participant-20250101T0400Z.dump \
#     --integration-db-dump /backups/integration-20250101T0400Z.dump
#
# Times: --*-started-at / --*-finished-at (RFC 3339), else the file's birth time
# (start; only when the filesystem records it and it is not after the end) and
# its modification time (end; for a directory, its newest file).
#
# Options (each also from the environment variable in brackets):
#   --validator-app-dump PATH      validator app DB dump, file or directory [BACKUP_VALIDATOR_APP_DUMP]
#   --validator-app-started-at T   [BACKUP_VALIDATOR_APP_STARTED_AT]
#   --validator-app-finished-at T  [BACKUP_VALIDATOR_APP_FINISHED_AT]
#   --participant-dump PATH        participant DB dump, file or directory [BACKUP_PARTICIPANT_DUMP]
#   --participant-started-at T     [BACKUP_PARTICIPANT_STARTED_AT]
#   --participant-finished-at T    [BACKUP_PARTICIPANT_FINISHED_AT]
#   --integration-db-dump PATH     Integration DB dump (pg_dump -Fc/-Ft/-Fd or plain SQL,
#                                  optionally .gz); without it verify-backup.sh
#                                  cannot test-restore it [BACKUP_INTEGRATION_DB_DUMP]
#   --integration-db-started-at T  [BACKUP_INTEGRATION_DB_STARTED_AT]
#   --integration-db-finished-at T [BACKUP_INTEGRATION_DB_FINISHED_AT]
#   --identities-dump PATH         participant identities dump (optional) [BACKUP_IDENTITIES_DUMP]
#   --backup-id ID                 name of this backup set (default: from the
#                                  backup time, e.g. 20250101T040000Z) [BACKUP_ID]
#   --out FILE                     write the manifest to FILE [BACKUP_MANIFEST]
#   --out-dir DIR                  write it to DIR/backup-manifest-<backup id>.json [BACKUP_MANIFEST_DIR]
#   --dry-run                      print the manifest, write nothing [BACKUP_MANIFEST_DRY_RUN=1]
#   --admin-api ENDPOINT           participant admin API [CANTON_ADMIN_API]
#   --access-token-file FILE       bearer token file for the admin API [CANTON_ACCESS_TOKEN_FILE]
#   --tls, --ca-cert PEM           TLS to the admin API [CANTON_TLS, CANTON_CA_CERT]
#   --db-url URL                   Integration DB, without a password (use PGPASSWORD,
#                                  or the whole URL in INTEGRATION_DB_URL) [INTEGRATION_DB_URL]
#   --schema NAME                  Integration DB schema [INTEGRATION_DB_SCHEMA]
#   --ingester NAME                ingester whose checkpoint to record [INGESTER_NAME]
#   --bin-dir DIR                  where dar-sync and ingest-ctl are [CANTON_DR_BIN_DIR]
# Other settings of the tools (client certificates, timeouts, PG* variables)
# pass through the environment.
#
# Output: one JSON object on stdout,
#   {"type":"backup-manifest","status":"ok","path":…,"dryRun":…,"manifest":{…}}
# warnings on stderr (and in the manifest's "warnings"). The file is written
# atomically (temporary file + rename); a rerun with the same inputs rewrites it.
# Needs jq, sha256sum and GNU coreutils.
#
# Exit codes: 0 manifest written; 2 usage error, bad input, a missing dump,
# missing tool; 3 node or database unreachable (nothing written).
set -euo pipefail
shopt -s inherit_errexit

readonly KIND=CantonDrBackupManifest
readonly SCHEMA_VERSION=1
SELF=$(readlink -f "${BASH_SOURCE[0]}")
readonly SELF
REPO=$(dirname "$(dirname "$SELF")")
readonly REPO

# Scratch space; its `emitted` file says that the one JSON result (or error)
# is out, also when a function inside $(...) printed it.
work=$(mktemp -d "${TMPDIR:-/tmp}/backup-manifest.XXXXXX")
readonly work
# The JSON result goes to the real stdout (fd 3), also from inside $(...).
exec 3>&1

cleanup() {
  local rc=$?
  if [[ "$rc" -ne 0 && ! -e "$work/emitted" ]]; then
    if [[ "$rc" -eq 130 || "$rc" -eq 143 ]]; then
      emit_error "interrupted by a signal; nothing was written" "rerun it" "$rc"
    else
      # An unexpected failure: still one JSON error that matches the exit code.
      emit_error "unexpected failure (exit $rc); see the messages above" "" 2
      rc=2
    fi
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
# Ctrl-C and kill end through cleanup (the EXIT trap), with 128+signal.
trap 'exit 130' INT
trap 'exit 143' TERM

status_word() {
  case $1 in
  0) echo ok ;;
  1) echo failed ;;
  2) echo usage-error ;;
  3) echo unavailable ;;
  130 | 143) echo interrupted ;;
  *) echo error ;;
  esac
}

emit_error() {
  local msg=$1 hint=$2 code=$3
  : >"$work/emitted"
  echo "backup-manifest: error: $msg" >&2
  [[ -n "$hint" ]] && echo "hint: $hint" >&2
  if command -v jq >/dev/null 2>&1; then
    jq -cn --arg e "$msg" --arg h "$hint" --argjson c "$code" --arg s "$(status_word "$code")" \
      '{type:"error",status:$s,exitCode:$c,error:$e} + (if $h == "" then {} else {hint:$h} end)' >&3
  else
    printf '{"type":"error","status":"%s","exitCode":%d}\n' "$(status_word "$code")" "$code" >&3
  fi
}

die() {
  emit_error "$1" "${2:-}" "${3:-2}"
  exit "${3:-2}"
}

warn() {
  echo "backup-manifest: warning: $1" >&2
  warnings+=("$1")
}

usage() {
  sed -n '2,/^set -euo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//'
  : >"$work/emitted"
  exit 0
}

# RFC 3339 (Z or ±hh:mm, up to 9 fractional digits, `.` or `,`) to epoch
# microseconds; refuses the loose forms GNU date would also accept.
to_micros() {
  local t=$1 what=$2 base frac="" zone
  [[ "$t" =~ ^([0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2})([.,]([0-9]{1,9}))?([Zz]|[+-][0-9]{2}:[0-9]{2})$ ]] ||
    die "$what '$t' is not an RFC 3339 time" "write it like 2025-01-01T04:00:00.123456Z"
  base=${BASH_REMATCH[1]}
  frac=${BASH_REMATCH[3]}
  zone=${BASH_REMATCH[4]}
  local secs
  secs=$(date -u -d "${base/[tT]/ }${zone/[zZ]/Z}" +%s 2>/dev/null) ||
    die "$what '$t' is not a valid time" "write it like 2025-01-01T04:00:00.123456Z"
  frac=$(printf '%-6s' "${frac:0:6}")
  frac=${frac// /0}
  echo $((secs * 1000000 + 10#$frac))
}

# Epoch microseconds to RFC 3339 UTC with exactly 6 fractional digits.
micros_to_rfc3339() {
  local us=$1
  printf '%s.%06dZ' "$(date -u -d "@$((us / 1000000))" +%Y-%m-%dT%H:%M:%S)" $((us % 1000000))
}

# A `stat`/`find` time "SECONDS.FRACTION" to epoch microseconds.
fs_time_to_micros() {
  local s=${1%%.*} f=""
  [[ "$1" == *.* ]] && f=${1#*.}
  f=$(printf '%-6s' "${f:0:6}")
  f=${f// /0}
  echo $((s * 1000000 + 10#$f))
}

find_tool() {
  local name=$1 p
  if [[ -n "${CANTON_DR_BIN_DIR:-}" ]]; then
    p="$CANTON_DR_BIN_DIR/$name"
    [[ -x "$p" ]] || die "$name not found in CANTON_DR_BIN_DIR=$CANTON_DR_BIN_DIR" "build it: cargo build --workspace --bins"
    echo "$p"
    return
  fi
  if p=$(command -v "$name" 2>/dev/null); then
    echo "$p"
    return
  fi
  for p in "$REPO/target/release/$name" "$REPO/target/debug/$name"; do
    if [[ -x "$p" ]]; then
      echo "$p"
      return
    fi
  done
  die "$name not found on PATH, in CANTON_DR_BIN_DIR or in $REPO/target/{release,debug}" \
    "build it: cargo build --workspace --bins --release (or pass --bin-dir)"
}

# A URL that carries a password must not be on argv (it shows in `ps`).
url_has_password() {
  [[ "$1" =~ ^postgres(ql)?://[^/@]*:[^/@]*@ ]] || [[ "$1" =~ (^|[[:space:]])password[[:space:]]*= ]]
}

# A bash string as a JSON string (jq costs ~50 ms a start: small objects are
# printed directly).
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}

# Describes one backup artifact: sets ART_JSON (its JSON object),
# ART_PATH (absolute), ART_STARTED_US (empty when unknown), ART_FINISHED_US.
#   describe_artifact PATH STARTED_FLAG FINISHED_FLAG WHAT
describe_artifact() {
  local path=$1 started_flag=$2 finished_flag=$3 what=$4
  local abs type size sha scope started="" started_src="" finished finished_src birth mtime
  [[ -e "$path" ]] || die "$what $path does not exist" "pass the path of the dump just taken"
  abs=$(readlink -f "$path")
  if [[ -d "$abs" ]]; then
    type="directory"
    scope="tree"
    size=$(find "$abs" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d", s}')
    # The sha256 of the sorted `sha256sum` listing of every file, by relative path.
    sha=$(cd "$abs" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum)
    sha=${sha%% *}
    mtime=$(find "$abs" -printf '%T@\n' | sort -n | tail -n 1)
  elif [[ -f "$abs" && -r "$abs" ]]; then
    type="file"
    scope="file"
    size=$(stat -c %s "$abs")
    sha=$(sha256sum "$abs")
    sha=${sha%% *}
    mtime=$(stat -c %.6Y "$abs")
  else
    die "$what $path is neither a readable file nor a directory"
  fi
  if [[ -n "$finished_flag" ]]; then
    finished=$(to_micros "$finished_flag" "$what finished-at")
    finished_src="flag"
  else
    finished=$(fs_time_to_micros "$mtime")
    finished_src="mtime"
  fi
  if [[ -n "$started_flag" ]]; then
    started=$(to_micros "$started_flag" "$what started-at")
    started_src="flag"
    [[ "$started" -le "$finished" ]] ||
      die "$what started-at $started_flag is after its finished time $(micros_to_rfc3339 "$finished")"
  else
    birth=$(stat -c %.6W "$abs")
    # 0: the filesystem does not record birth times. A birth after the end
    # (a copy) says nothing about when the dump started.
    if [[ "${birth%%.*}" != 0 ]]; then
      birth=$(fs_time_to_micros "$birth")
      if [[ "$birth" -le "$finished" ]]; then
        started=$birth
        started_src="birth-time"
      fi
    fi
  fi
  local started_json=null started_src_json=null
  if [[ -n "$started" ]]; then
    started_json=$(json_str "$(micros_to_rfc3339 "$started")")
    started_src_json=$(json_str "$started_src")
  fi
  ART_PATH=$abs
  ART_STARTED_US=$started
  ART_FINISHED_US=$finished
  ART_JSON="{\"path\":$(json_str "$abs"),\"type\":\"$type\",\"size\":$size,\"sha256\":\"$sha\",\"sha256Scope\":\"$scope\",\"startedAt\":$started_json,\"startedAtSource\":$started_src_json,\"finishedAt\":$(json_str "$(micros_to_rfc3339 "$finished")"),\"finishedAtSource\":\"$finished_src\"}"
}

# The format pg_restore or psql will need for an Integration DB dump.
dump_format() {
  local p=$1 magic
  if [[ -d "$p" ]]; then
    [[ -f "$p/toc.dat" ]] && echo directory || echo unknown
    return
  fi
  magic=$(head -c 5 "$p" | od -An -c | tr -d ' \n')
  if [[ "$magic" == PGDMP ]]; then
    echo custom
  elif [[ "$(head -c 2 "$p" | od -An -tx1 | tr -d ' \n')" == 1f8b ]]; then
    echo plain-gzip
  elif [[ "$(dd if="$p" bs=1 skip=257 count=5 2>/dev/null)" == ustar ]]; then
    echo tar
  else
    echo plain
  fi
}

# Runs a tool with JSON output, its stdout into FILE; returns its exit code.
run_tool() {
  local out=$1
  shift
  local rc=0
  "$@" >"$out" || rc=$?
  return "$rc"
}

tool_failed() {
  local name=$1 rc=$2 out=$3 msg code
  msg=$(jq -r 'select(.type == "error") | .error' "$out" 2>/dev/null | tail -n 1 || true)
  case $rc in
  3) code=3 ;;
  *) code=2 ;;
  esac
  die "$name failed (exit $rc)${msg:+: $msg}; no manifest written" \
    "fix the cause above and rerun: the manifest is written only when everything was read" "$code"
}

# A flag's value: a usage error when the flag is last or its value is empty.
need() {
  [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value" "see: backup-manifest.sh --help"
}

main() {
  local validator_app=${BACKUP_VALIDATOR_APP_DUMP:-} va_started=${BACKUP_VALIDATOR_APP_STARTED_AT:-}
  local va_finished=${BACKUP_VALIDATOR_APP_FINISHED_AT:-}
  local participant=${BACKUP_PARTICIPANT_DUMP:-} p_started=${BACKUP_PARTICIPANT_STARTED_AT:-}
  local p_finished=${BACKUP_PARTICIPANT_FINISHED_AT:-}
  local idb=${BACKUP_INTEGRATION_DB_DUMP:-} idb_started=${BACKUP_INTEGRATION_DB_STARTED_AT:-}
  local idb_finished=${BACKUP_INTEGRATION_DB_FINISHED_AT:-}
  local identities=${BACKUP_IDENTITIES_DUMP:-} backup_id=${BACKUP_ID:-}
  local out=${BACKUP_MANIFEST:-} out_dir=${BACKUP_MANIFEST_DIR:-}
  local dry_run=${BACKUP_MANIFEST_DRY_RUN:-0}
  warnings=()
  while [[ $# -gt 0 ]]; do
    case $1 in
    --validator-app-dump) need "$@"; validator_app=$2; shift 2 ;;
    --validator-app-started-at) need "$@"; va_started=$2; shift 2 ;;
    --validator-app-finished-at) need "$@"; va_finished=$2; shift 2 ;;
    --participant-dump) need "$@"; participant=$2; shift 2 ;;
    --participant-started-at) need "$@"; p_started=$2; shift 2 ;;
    --participant-finished-at) need "$@"; p_finished=$2; shift 2 ;;
    --integration-db-dump) need "$@"; idb=$2; shift 2 ;;
    --integration-db-started-at) need "$@"; idb_started=$2; shift 2 ;;
    --integration-db-finished-at) need "$@"; idb_finished=$2; shift 2 ;;
    --identities-dump) need "$@"; identities=$2; shift 2 ;;
    --backup-id) need "$@"; backup_id=$2; shift 2 ;;
    --out) need "$@"; out=$2; shift 2 ;;
    --out-dir) need "$@"; out_dir=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    --admin-api) need "$@"; export CANTON_ADMIN_API=$2; shift 2 ;;
    --access-token-file) need "$@"; export CANTON_ACCESS_TOKEN_FILE=$2; shift 2 ;;
    --tls) export CANTON_TLS=true; shift ;;
    --ca-cert) need "$@"; export CANTON_CA_CERT=$2; shift 2 ;;
    --db-url)
      need "$@"
      url_has_password "$2" &&
        die "--db-url carries a password, which would show in ps" \
          "put the password in PGPASSWORD, or the whole URL in INTEGRATION_DB_URL"
      export INTEGRATION_DB_URL=$2
      shift 2
      ;;
    --schema) need "$@"; export INTEGRATION_DB_SCHEMA=$2; shift 2 ;;
    --ingester) need "$@"; export INGESTER_NAME=$2; shift 2 ;;
    --bin-dir) need "$@"; export CANTON_DR_BIN_DIR=$2; shift 2 ;;
    -h | --help) usage ;;
    *) die "unknown argument '$1'" "see: backup-manifest.sh --help" ;;
    esac
  done
  case $dry_run in 1 | true | yes) dry_run=1 ;; *) dry_run=0 ;; esac

  command -v jq >/dev/null 2>&1 || die "jq is not installed" "apt-get install jq"
  [[ -n "$validator_app" ]] || die "--validator-app-dump is required" "pass the validator app DB dump just taken"
  [[ -n "$participant" ]] || die "--participant-dump is required" "pass the participant DB dump just taken"
  [[ -n "$out" || -n "$out_dir" || "$dry_run" -eq 1 ]] ||
    die "say where to write the manifest" "pass --out FILE or --out-dir DIR (or --dry-run)"
  [[ -z "$out" || -z "$out_dir" ]] || die "--out and --out-dir exclude each other"
  [[ -z "$out_dir" || -d "$out_dir" ]] || die "--out-dir $out_dir is not a directory" "create it first"
  local dar_sync ingest_ctl
  dar_sync=$(find_tool dar-sync)
  ingest_ctl=$(find_tool ingest-ctl)
  export CANTON_DR_OUTPUT=json

  local va_json p_json idb_json=null id_json=null va_start va_end p_start p_end idb_abs
  describe_artifact "$validator_app" "$va_started" "$va_finished" "validator-app dump"
  va_json=$ART_JSON
  va_start=$ART_STARTED_US
  va_end=$ART_FINISHED_US
  describe_artifact "$participant" "$p_started" "$p_finished" "participant dump"
  p_json=$ART_JSON
  p_start=$ART_STARTED_US
  p_end=$ART_FINISHED_US
  if [[ -n "$idb" ]]; then
    describe_artifact "$idb" "$idb_started" "$idb_finished" "Integration DB dump"
    idb_abs=$ART_PATH
    local format
    format=$(dump_format "$idb_abs")
    [[ "$format" != unknown ]] ||
      die "Integration DB dump $idb is a directory without toc.dat" "pass a pg_dump -Fd directory, or a dump file"
    idb_json="${ART_JSON%\}},\"format\":\"$format\"}"
  else
    warn "no --integration-db-dump: verify-backup.sh cannot test-restore the Integration DB of this backup"
  fi
  if [[ -n "$identities" ]]; then
    describe_artifact "$identities" "" "" "identities dump"
    id_json=$ART_JSON
  fi

  # Splice: the validator app dump must finish before the participant dump starts.
  if [[ -n "$p_start" ]]; then
    [[ "$va_end" -lt "$p_start" ]] ||
      warn "the validator-app dump finished ($(micros_to_rfc3339 "$va_end")) after the participant dump started ($(micros_to_rfc3339 "$p_start")): Splice requires app before participant; take both again in that order"
  elif [[ "$va_end" -ge "$p_end" ]]; then
    warn "the validator-app dump finished after the participant dump: Splice requires app before participant; take both again in that order"
  else
    warn "the participant dump's start time is unknown (no --participant-started-at, no birth time): the app-before-participant order cannot be proven"
  fi

  # The backup time: the earliest state in the set (the validator app's), so
  # that `dar-sync upload --since BACKUP_TIME` and the 30-day rule are safe.
  local backup_us backup_src
  if [[ -n "$va_start" ]]; then
    backup_us=$va_start
    backup_src="validatorApp.startedAt"
  else
    backup_us=$va_end
    backup_src="validatorApp.finishedAt"
  fi
  [[ -n "$backup_id" ]] || backup_id=$(date -u -d "@$((backup_us / 1000000))" +%Y%m%dT%H%M%SZ)
  [[ "$backup_id" =~ ^[A-Za-z0-9._-]+$ ]] ||
    die "--backup-id '$backup_id' may hold only letters, digits, '.', '_' and '-'"

  # The node's DARs now: everything `dar-sync diff --registry` sees on the node
  # (present + extra); registry entries it lacks are noted.
  local listed_at dars_out="$work/dars.ndjson" rc=0 dars_json missing_line
  listed_at=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
  run_tool "$dars_out" "$dar_sync" diff --registry || rc=$?
  [[ "$rc" -eq 0 ]] || tool_failed "dar-sync diff --registry" "$rc" "$dars_out"
  # Line 1: the registry entries missing on the node (ids), line 2: the JSON.
  {
    IFS= read -r missing_line
    IFS= read -r dars_json
  } < <(jq -rs --arg at "$listed_at" --arg api "${CANTON_ADMIN_API:-127.0.0.1:5002}" '
      [ .[] | select(.type == "present" or .type == "extra")
        | {mainPackageId, name, version, builtin: (.builtin // false)} ] as $items
      | [ .[] | select(.type == "missing")
          | {mainPackageId, name, version, uploadedAt} ] as $missing
      | ($missing | map(.mainPackageId) | join(", ")),
        ({listedAt: $at, adminApi: $api, count: ($items | length),
          items: ($items | sort_by(.name, .version, .mainPackageId)),
          registryMissing: $missing} | tojson)' "$dars_out")
  [[ -n "$dars_json" ]] || die "cannot read the output of dar-sync diff --registry" "" 2
  if [[ -n "$missing_line" ]]; then
    warn "DAR(s) of the dar_uploads registry are not on the node now: $missing_line (dar-sync upload --registry)"
  fi

  # The ingestion checkpoint now (the Integration DB dump holds this or an earlier one).
  local status_out="$work/status.json" read_at ingestion_json has_checkpoint
  read_at=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
  rc=0
  run_tool "$status_out" env -u CANTON_LEDGER_API "$ingest_ctl" status || rc=$?
  [[ "$rc" -eq 0 ]] || tool_failed "ingest-ctl status" "$rc" "$status_out"
  {
    IFS= read -r has_checkpoint
    IFS= read -r ingestion_json
  } < <(jq -rs --arg at "$read_at" '
      (map(select(.type == "status")) | last) as $s
      | (if $s.checkpoint == null then "no" else "yes" end),
        ({ingester: $s.ingester, readAt: $at, checkpoint: $s.checkpoint,
          lastTransaction: $s.lastTransaction, offsetEpoch: $s.offsetEpoch,
          desiredState: $s.desiredState, actualState: $s.actualState} | tojson)' "$status_out")
  [[ -n "$ingestion_json" ]] || die "cannot read the output of ingest-ctl status" "" 2
  [[ "$has_checkpoint" == yes ]] || warn "the ingester has no checkpoint yet"

  local created_at created_by manifest w warnings_json=""
  created_at=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
  created_by="$(id -un 2>/dev/null || echo unknown)@$(hostname 2>/dev/null || echo unknown)"
  for w in "${warnings[@]}"; do
    warnings_json+="${warnings_json:+,}$(json_str "$w")"
  done
  manifest="{\"kind\":\"$KIND\",\"schemaVersion\":$SCHEMA_VERSION,\"backupId\":$(json_str "$backup_id"),\"backupTime\":\"$(micros_to_rfc3339 "$backup_us")\",\"backupTimeSource\":\"$backup_src\",\"createdAt\":\"$created_at\",\"createdBy\":$(json_str "$created_by"),\"artifacts\":{\"validatorApp\":$va_json,\"participant\":$p_json,\"integrationDb\":$idb_json,\"identities\":$id_json},\"dars\":$dars_json,\"ingestion\":$ingestion_json,\"warnings\":[$warnings_json]}"

  local path=""
  if [[ -n "$out_dir" ]]; then
    path="$(readlink -f "$out_dir")/backup-manifest-$backup_id.json"
  elif [[ -n "$out" ]]; then
    path=$(readlink -f "$out" 2>/dev/null || echo "$out")
  fi
  if [[ "$dry_run" -eq 0 ]]; then
    local dir tmp
    dir=$(dirname "$path")
    [[ -d "$dir" ]] || die "directory $dir of --out does not exist" "create it first"
    tmp=$(mktemp "$dir/.backup-manifest.XXXXXX")
    if ! { jq . <<<"$manifest" >"$tmp" && chmod 644 "$tmp" && mv -f "$tmp" "$path"; }; then
      rm -f "$tmp"
      die "cannot write the manifest to $path" "check the directory's permissions and free space"
    fi
  fi
  local path_json=null dry_json=false
  [[ -n "$path" ]] && path_json=$(json_str "$path")
  [[ "$dry_run" -eq 1 ]] && dry_json=true
  : >"$work/emitted"
  printf '{"type":"backup-manifest","status":"ok","path":%s,"dryRun":%s,"manifest":%s}\n' \
    "$path_json" "$dry_json" "$manifest"
}

main "$@"
