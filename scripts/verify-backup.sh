#!/usr/bin/env bash
# verify-backup.sh — the nightly (cron) check that the newest backup set can
# really be restored, with an honest status (docs/backup-check.md).
#
#   scripts/verify-backup.sh --manifest /backups/manifests --admin-api node:5002 \
#     --report /var/lib/canton-dr/verify.json \
#     --textfile /var/lib/node_exporter/textfile/canton_dr_backup.prom
#
# Checks, each ok / warn / fail / skipped / unavailable:
#   manifest                the manifest (of backup-manifest.sh) is there and readable;
#                           every other check needs it (it does not count as a check run)
#   backup-files            every dump it names is there, same size and sha256
#   backup-age              the backup is younger than --max-age (default 4h)
#   restore-window          well inside Canton's 30 days: warn from --warn-age
#                           (25d), fail from --fail-age (30d)
#   dump-order              the validator-app dump finished before the participant
#                           dump started
#   dars-covered            every DAR of the dar_uploads registry is in the manifest's
#                           DAR list or was uploaded after the backup (live node + DB)
#   integration-db-restore  the Integration DB dump restores into a throwaway
#                           PostgreSQL (scripts/pg-tmp.sh) and holds a checkpoint
#   checkpoint-lookup       the record time of the last ingested transaction (of the
#                           restored dump, else of the manifest) resolves with
#                           offset-lookup on the live node
# Without --admin-api (or CANTON_ADMIN_API) the two live checks are skipped.
#
# Options (each also from the environment variable in brackets):
#   --manifest PATH          manifest file, or a directory: its newest manifest [BACKUP_MANIFEST]
#   --max-age DURATION       e.g. 4h, 90m, 1d12h [VERIFY_BACKUP_MAX_AGE] (4h)
#   --warn-age DURATION      [VERIFY_BACKUP_WARN_AGE] (25d)
#   --fail-age DURATION      [VERIFY_BACKUP_FAIL_AGE] (30d)
#   --skip CHECK             do not run CHECK; repeatable [VERIFY_BACKUP_SKIP, comma-separated]
#   --no-hash                compare sizes only, not sha256 [VERIFY_BACKUP_NO_HASH=1]
#   --fail-on-warn           exit 1 on warnings too [VERIFY_BACKUP_FAIL_ON_WARN=1]
#   --report FILE            also write the JSON report to FILE (atomically) [VERIFY_BACKUP_REPORT]
#   --textfile FILE          write Prometheus metrics to FILE (atomically), for
#                            node_exporter's textfile collector [VERIFY_BACKUP_TEXTFILE]
#   --admin-api ENDPOINT     the live participant's admin API [CANTON_ADMIN_API]
#   --access-token-file FILE bearer token file for the admin API [CANTON_ACCESS_TOKEN_FILE]
#   --tls, --ca-cert PEM     TLS to the admin API [CANTON_TLS, CANTON_CA_CERT]
#   --db-url URL             the live Integration DB (its dar_uploads registry), without
#                            a password (use PGPASSWORD, or INTEGRATION_DB_URL) [INTEGRATION_DB_URL]
#   --schema NAME            Integration DB schema [INTEGRATION_DB_SCHEMA]
#   --ingester NAME          ingester whose checkpoint to check (default: the manifest's) [INGESTER_NAME]
#   --bin-dir DIR            where dar-sync, ingest-ctl, offset-lookup are [CANTON_DR_BIN_DIR]
# Other settings of the tools (client certificates, timeouts, PG* variables,
# OFFSET_LOOKUP_NON_UNIQUE_RECORD_TIMES) pass through the environment.
#
# Output: one JSON report on stdout ({"kind":"CantonDrBackupVerification",
# "status","exitCode","checks":[…],…}); one line per check on stderr.
# Status and exit code always agree:
#   ok 0 · warn 0 (1 with --fail-on-warn) · fail 1 · unknown 1 (no check ran)
#   · unavailable 3 (a check could not reach the node or a database, none failed)
#   · usage-error 2 (bad flags; nothing written)
# The textfile keeps canton_dr_verify_last_success_timestamp_seconds of the
# previous file when this run does not succeed, so a dead-man alert fires.
# Needs jq, sha256sum, GNU coreutils, and PostgreSQL for the restore check.
set -euo pipefail
shopt -s inherit_errexit

readonly KIND=CantonDrBackupVerification
readonly SCHEMA_VERSION=1
readonly MANIFEST_KIND=CantonDrBackupManifest
readonly MANIFEST_SCHEMA_VERSION=1
# The field separator of the scripts' internal records (never in a path or message).
readonly US=$'\x1f'
readonly CHECKS=(manifest backup-files backup-age restore-window dump-order dars-covered
  integration-db-restore checkpoint-lookup)
SELF=$(readlink -f "${BASH_SOURCE[0]}")
readonly SELF
REPO=$(dirname "$(dirname "$SELF")")
readonly REPO
# libpq settings of the live Integration DB that must not reach the throwaway cluster.
readonly LIVE_PG_VARS=(PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGPASSWORD PGPASSFILE
  PGSERVICE PGSERVICEFILE PGOPTIONS PGSSLMODE PGSSLROOTCERT PGSSLCERT PGSSLKEY
  PGREQUIRESSL PGTARGETSESSIONATTRS INTEGRATION_DB_URL)

work=$(mktemp -d "${TMPDIR:-/tmp}/verify-backup.XXXXXX")
readonly work
exec 3>&1
pg_dir=""

# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local rc=$?
  if [[ -n "$pg_dir" && -d "$pg_dir" ]]; then
    bash "$pg_tmp" stop "$pg_dir" >/dev/null 2>&1 || true
  fi
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

emit_error() {
  local msg=$1 hint=$2 code=$3 status=usage-error
  [[ "$code" -eq 3 ]] && status=unavailable
  [[ "$code" -ge 128 ]] && status=interrupted
  : >"$work/emitted"
  echo "verify-backup: error: $msg" >&2
  [[ -n "$hint" ]] && echo "hint: $hint" >&2
  if command -v jq >/dev/null 2>&1; then
    jq -cn --arg e "$msg" --arg h "$hint" --argjson c "$code" --arg s "$status" \
      '{type:"error",status:$s,exitCode:$c,error:$e} + (if $h == "" then {} else {hint:$h} end)' >&3
  else
    printf '{"type":"error","status":"%s","exitCode":%d}\n' "$status" "$code" >&3
  fi
}

die() {
  emit_error "$1" "${2:-}" "${3:-2}"
  exit "${3:-2}"
}

log() {
  echo "verify-backup: $*" >&2
}

usage() {
  sed -n '2,/^set -euo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//'
  : >"$work/emitted"
  exit 0
}

now_micros() {
  date -u +%s%6N
}

# RFC 3339 (Z or ±hh:mm, up to 9 fractional digits) to epoch microseconds;
# prints nothing and fails for anything else.
to_micros() {
  local t=$1 base frac zone secs
  [[ "$t" =~ ^([0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2})([.,]([0-9]{1,9}))?([Zz]|[+-][0-9]{2}:[0-9]{2})$ ]] ||
    return 1
  base=${BASH_REMATCH[1]}
  frac=${BASH_REMATCH[3]}
  zone=${BASH_REMATCH[4]}
  secs=$(date -u -d "${base/[tT]/ }${zone/[zZ]/Z}" +%s 2>/dev/null) || return 1
  frac=$(printf '%-6s' "${frac:0:6}")
  frac=${frac// /0}
  echo $((secs * 1000000 + 10#$frac))
}

micros_to_rfc3339() {
  local us=$1
  printf '%s.%06dZ' "$(date -u -d "@$((us / 1000000))" +%Y-%m-%dT%H:%M:%S)" $((us % 1000000))
}

# "4h", "90m", "1d12h", "3600s", "3600" to seconds.
duration_seconds() {
  local d=$1 what=$2 total=0 n unit
  [[ "$d" =~ ^[0-9]+$ ]] && { echo "$d"; return; }
  [[ "$d" =~ ^([0-9]+[smhd])+$ ]] || die "$what '$d' is not a duration" "write it like 4h, 90m, 25d or 1d12h"
  while [[ "$d" =~ ^([0-9]+)([smhd])(.*)$ ]]; do
    n=$((10#${BASH_REMATCH[1]}))
    unit=${BASH_REMATCH[2]}
    d=${BASH_REMATCH[3]}
    case $unit in
    s) total=$((total + n)) ;;
    m) total=$((total + n * 60)) ;;
    h) total=$((total + n * 3600)) ;;
    d) total=$((total + n * 86400)) ;;
    esac
  done
  echo "$total"
}

# Seconds as "2d 3h", "4h 5m", "3m 2s", "12s".
human_duration() {
  local s=$1 sign=""
  if [[ "$s" -lt 0 ]]; then
    sign="-"
    s=$((-s))
  fi
  if [[ "$s" -ge 86400 ]]; then
    printf '%s%dd %dh' "$sign" $((s / 86400)) $((s % 86400 / 3600))
  elif [[ "$s" -ge 3600 ]]; then
    printf '%s%dh %dm' "$sign" $((s / 3600)) $((s % 3600 / 60))
  elif [[ "$s" -ge 60 ]]; then
    printf '%s%dm %ds' "$sign" $((s / 60)) $((s % 60))
  else
    printf '%s%ds' "$sign" "$s"
  fi
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

# PostgreSQL client program NAME (pg_restore, psql): $PGTMP_BIN, PATH, or the
# newest /usr/lib/postgresql/*/bin.
find_pg_client() {
  local name=$1 p newest=""
  if [[ -n "${PGTMP_BIN:-}" && -x "$PGTMP_BIN/$name" ]]; then
    echo "$PGTMP_BIN/$name"
    return 0
  fi
  if p=$(command -v "$name" 2>/dev/null); then
    echo "$p"
    return 0
  fi
  shopt -s nullglob
  for p in "${PGTMP_PG_ROOT:-/usr/lib/postgresql}"/*/bin/"$name"; do
    newest=$(printf '%s\n%s\n' "$newest" "$p" | sed '/^$/d' | sort -V | tail -n 1)
  done
  shopt -u nullglob
  [[ -n "$newest" ]] || return 1
  echo "$newest"
}

url_has_password() {
  [[ "$1" =~ ^postgres(ql)?://[^/@]*:[^/@]*@ ]] || [[ "$1" =~ (^|[[:space:]])password[[:space:]]*= ]]
}

# A bash string as a JSON string (the scripts' own messages and paths; jq
# costs ~50 ms a start, so small objects are printed directly).
json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}

# Records one check result: add_check NAME STATUS MESSAGE [DETAILS-JSON].
# One line per check, fields separated by US (\x1f); the report is built from
# these at the end.
add_check() {
  local name=$1 status=$2 msg=$3 details=${4:-}
  [[ -n "$details" ]] || details="{}"
  msg=${msg//$'\n'/ }
  msg=${msg//$US/ }
  printf '%s\x1f%s\x1f%s\x1f%s\n' "$name" "$status" "$msg" "${details//$'\n'/ }" >>"$work/checks.us"
  printf 'verify-backup: %-11s %-22s %s\n' "$status" "$name" "$msg" >&2
}

is_skipped() {
  local c
  for c in "${skip[@]}"; do
    [[ "$c" == "$1" ]] && return 0
  done
  return 1
}

# The JSON error message of a tool's stdout (its last {"type":"error"} line).
tool_error() {
  jq -r 'select(.type == "error") | .error' "$1" 2>/dev/null | tail -n 1 || true
}

# ---------------------------------------------------------------------------
# The manifest

# The newest manifest (by backupTime) in a directory, or the file itself.
pick_manifest() {
  local p=$1 f best="" best_time="" t listing
  if [[ ! -d "$p" ]]; then
    echo "$p"
    return
  fi
  shopt -s nullglob
  local files=("$p"/*.json)
  shopt -u nullglob
  [[ "${#files[@]}" -gt 0 ]] || return 0
  # One jq for all files; if one of them is not JSON, jq stops there: then
  # one jq per file.
  if ! listing=$(jq -r --arg k "$MANIFEST_KIND" \
    'select(type == "object" and .kind == $k and (.backupTime | type) == "string")
     | "\(.backupTime)\u001f\(input_filename)"' "${files[@]}" 2>/dev/null); then
    listing=""
    for f in "${files[@]}"; do
      t=$(jq -r --arg k "$MANIFEST_KIND" \
        'select(type == "object" and .kind == $k) | .backupTime // empty' "$f" 2>/dev/null || true)
      [[ -n "$t" ]] && listing+="$t"$'\x1f'"$f"$'\n'
    done
  fi
  while IFS=$US read -r t f; do
    [[ -n "$t" ]] || continue
    if [[ -z "$best" || "$t" > "$best_time" ]]; then
      best=$f
      best_time=$t
    fi
  done <<<"$listing"
  echo "$best"
}

# Loads the manifest into variables (one jq); records the manifest check.
check_manifest() {
  local p=$1 fields kind v created_at
  manifest_path=$(pick_manifest "$p")
  if [[ -z "$manifest_path" ]]; then
    add_check manifest fail "no backup manifest in $p: has backup-manifest.sh run after the backups?" \
      "{\"directory\":$(json_str "$p")}"
    return 1
  fi
  if [[ ! -f "$manifest_path" ]]; then
    add_check manifest fail "manifest $manifest_path does not exist: has backup-manifest.sh run after the backups?" \
      "{\"path\":$(json_str "$manifest_path")}"
    return 1
  fi
  manifest_path=$(readlink -f "$manifest_path")
  manifest_dir=$(dirname "$manifest_path")
  # Also accepted: what backup-manifest.sh prints ({"type":"backup-manifest",
  # "manifest":{…}}); every later read uses the unwrapped copy.
  manifest_doc="$work/manifest.json"
  if ! jq -c 'if type == "object" and .type == "backup-manifest" then .manifest else . end' \
    "$manifest_path" >"$manifest_doc" 2>/dev/null; then
    add_check manifest fail "manifest $manifest_path is not JSON" \
      "{\"path\":$(json_str "$manifest_path")}"
    return 1
  fi
  if ! fields=$(jq -r '
      def s: if . == null then "" else tostring end;
      if type != "object" then "not-an-object" else
      [ (.kind | s), (.schemaVersion | s), (.backupTime | s), (.backupId | s), (.createdAt | s),
        (.ingestion.ingester | s),
        (.artifacts.validatorApp.finishedAt | s),
        (.artifacts.participant.startedAt | s), (.artifacts.participant.startedAtSource | s),
        (.artifacts.participant.finishedAt | s),
        (if .artifacts.integrationDb == null then "0" else "1" end),
        (.artifacts.integrationDb.path | s), (.artifacts.integrationDb.format | s),
        (if (.dars.items | type) == "array" then "1" else "0" end),
        (if .ingestion.lastTransaction == null then "0" else "1" end)
      ] | join("\u001f") end' "$manifest_doc" 2>/dev/null) ||
    [[ "$fields" == not-an-object ]]; then
    add_check manifest fail "manifest $manifest_path is not a JSON object" \
      "{\"path\":$(json_str "$manifest_path")}"
    return 1
  fi
  IFS=$US read -r kind v backup_time backup_id created_at manifest_ingester app_finished_at \
    participant_started_at participant_started_src participant_finished_at has_idb idb_path \
    idb_format has_dar_list has_last_tx <<<"$fields"
  if [[ "$kind" != "$MANIFEST_KIND" ]]; then
    add_check manifest fail "$manifest_path is not a backup manifest (kind \"$kind\", want \"$MANIFEST_KIND\")" \
      "{\"path\":$(json_str "$manifest_path")}"
    return 1
  fi
  if [[ "$v" != "$MANIFEST_SCHEMA_VERSION" ]]; then
    add_check manifest fail "manifest schema version $v is not $MANIFEST_SCHEMA_VERSION: use the verify-backup.sh that matches backup-manifest.sh" \
      "{\"path\":$(json_str "$manifest_path"),\"schemaVersion\":$(json_str "$v")}"
    return 1
  fi
  if ! backup_us=$(to_micros "$backup_time"); then
    add_check manifest fail "manifest $manifest_path has no valid backupTime ('$backup_time')" \
      "{\"path\":$(json_str "$manifest_path")}"
    return 1
  fi
  add_check manifest ok "backup $backup_id taken at $backup_time" \
    "{\"path\":$(json_str "$manifest_path"),\"backupId\":$(json_str "$backup_id"),\"backupTime\":$(json_str "$backup_time"),\"createdAt\":$(json_str "$created_at")}"
}

# A path as recorded in the manifest, relative ones against its directory.
resolve_path() {
  [[ -z "$1" || "$1" == /* ]] && { echo "$1"; return; }
  echo "$manifest_dir/$1"
}

# sha256 as backup-manifest.sh computes it: the file's, or for a directory the
# sha256 of the sorted `sha256sum` listing of its files by relative path.
artifact_sha256() {
  local p=$1 sha
  if [[ -d "$p" ]]; then
    sha=$(cd "$p" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum)
  else
    sha=$(sha256sum "$p")
  fi
  echo "${sha%% *}"
}

artifact_size() {
  if [[ -d "$1" ]]; then
    find "$1" -type f -printf '%s\n' | awk '{s += $1} END {printf "%d", s}'
  else
    stat -c %s "$1"
  fi
}

# "a", "b" as a JSON array of strings.
json_array() {
  local out="" x
  for x in "$@"; do
    out+="${out:+,}$(json_str "$x")"
  done
  printf '[%s]' "$out"
}

check_backup_files() {
  local listing a present p want_type want_size want_sha size sha type problems=() checked=()
  listing=$(jq -r '
      ["validatorApp", "participant", "integrationDb", "identities"][] as $a
      | .artifacts[$a] as $x
      | [$a, (if $x == null then "0" else "1" end), ($x.path // ""), ($x.type // "file"),
         ($x.size // -1 | tostring), ($x.sha256 // "")] | join("\u001f")' "$manifest_doc")
  while IFS=$US read -r a present p want_type want_size want_sha; do
    if [[ "$present" == 0 ]]; then
      if [[ "$a" == validatorApp || "$a" == participant ]]; then
        problems+=("the manifest records no $a dump")
      fi
      continue
    fi
    p=$(resolve_path "$p")
    if [[ ! -e "$p" ]]; then
      problems+=("$a dump $p is missing")
      continue
    fi
    if [[ -d "$p" ]]; then type="directory"; else type="file"; fi
    if [[ "$type" != "$want_type" ]]; then
      problems+=("$a dump $p is a $type, the manifest recorded a $want_type")
      continue
    fi
    if [[ ! -r "$p" ]]; then
      problems+=("$a dump $p is not readable")
      continue
    fi
    size=$(artifact_size "$p")
    if [[ "$size" != "$want_size" ]]; then
      problems+=("$a dump $p has $size bytes, the manifest recorded $want_size")
      continue
    fi
    if [[ "$no_hash" -eq 0 ]]; then
      sha=$(artifact_sha256 "$p")
      if [[ "$sha" != "$want_sha" ]]; then
        problems+=("$a dump $p has sha256 $sha, the manifest recorded $want_sha")
        continue
      fi
    fi
    checked+=("$a")
  done <<<"$listing"
  local details
  details="{\"hashed\":$([[ "$no_hash" -eq 0 ]] && echo true || echo false),\"verified\":$(json_array "${checked[@]}"),\"problems\":$(json_array "${problems[@]}")}"
  if [[ "${#problems[@]}" -gt 0 ]]; then
    add_check backup-files fail "$(printf '%s; ' "${problems[@]}" | sed 's/; $//')" "$details"
  elif [[ "$no_hash" -eq 1 ]]; then
    add_check backup-files ok "${#checked[@]} dump(s) present with the recorded sizes (sha256 not checked: --no-hash)" "$details"
  else
    add_check backup-files ok "${#checked[@]} dump(s) present with the recorded sizes and sha256" "$details"
  fi
}

check_backup_age() {
  local age_s=$((backup_age_us / 1000000)) details
  details="{\"backupTime\":$(json_str "$backup_time"),\"ageSeconds\":$age_s,\"maxAgeSeconds\":$max_age}"
  if [[ "$age_s" -lt -300 ]]; then
    add_check backup-age warn "the backup time $backup_time is $(human_duration $((-age_s))) in the future: check the clocks" "$details"
  elif [[ "$age_s" -le "$max_age" ]]; then
    add_check backup-age ok "newest backup is $(human_duration "$age_s") old (limit $(human_duration "$max_age"))" "$details"
  else
    add_check backup-age fail "newest backup is $(human_duration "$age_s") old, over the limit of $(human_duration "$max_age"): backups are not being taken (Splice asks for one at least every 4 hours)" "$details"
  fi
}

check_restore_window() {
  local age_s=$((backup_age_us / 1000000)) details
  details="{\"ageSeconds\":$age_s,\"warnAgeSeconds\":$warn_age,\"failAgeSeconds\":$fail_age}"
  if [[ "$age_s" -ge "$fail_age" ]]; then
    add_check restore-window fail "newest backup is $(human_duration "$age_s") old: a participant restored from it is more than $(human_duration "$fail_age") behind and cannot catch up (sequencers prune after 30 days)" "$details"
  elif [[ "$age_s" -ge "$warn_age" ]]; then
    add_check restore-window warn "newest backup is $(human_duration "$age_s") old: it leaves $(human_duration $((fail_age - age_s))) until it is useless (limit $(human_duration "$fail_age"))" "$details"
  else
    add_check restore-window ok "restorable for another $(human_duration $((fail_age - age_s))) (limit $(human_duration "$fail_age"))" "$details"
  fi
}

# "" as JSON null, anything else as a JSON string.
json_str_or_null() {
  if [[ -z "$1" ]]; then printf null; else json_str "$1"; fi
}

check_dump_order() {
  local app_end_us p_start_us p_end_us details gap
  details="{\"validatorAppFinishedAt\":$(json_str_or_null "$app_finished_at"),\"participantStartedAt\":$(json_str_or_null "$participant_started_at"),\"participantStartedAtSource\":$(json_str_or_null "$participant_started_src"),\"participantFinishedAt\":$(json_str_or_null "$participant_finished_at")}"
  if ! app_end_us=$(to_micros "$app_finished_at") || ! p_end_us=$(to_micros "$participant_finished_at"); then
    add_check dump-order fail "the manifest lacks the validator-app or participant dump times" "$details"
    return
  fi
  if [[ -n "$participant_started_at" ]] && p_start_us=$(to_micros "$participant_started_at"); then
    if [[ "$app_end_us" -lt "$p_start_us" ]]; then
      gap=$((p_start_us - app_end_us))
      if [[ "$gap" -lt 60000000 ]]; then
        gap=$(printf '%d.%03ds' $((gap / 1000000)) $((gap % 1000000 / 1000)))
      else
        gap=$(human_duration $((gap / 1000000)))
      fi
      add_check dump-order ok "validator-app dump finished $gap before the participant dump started" "$details"
    else
      add_check dump-order fail "validator-app dump finished at $app_finished_at, not before the participant dump started at $participant_started_at: Splice requires the app state to be strictly older; take both again, app first" "$details"
    fi
  elif [[ "$app_end_us" -ge "$p_end_us" ]]; then
    add_check dump-order fail "validator-app dump finished at $app_finished_at, after the participant dump finished at $participant_finished_at: take both again, app first" "$details"
  else
    add_check dump-order warn "the participant dump's start time is unknown: the app-before-participant order cannot be proven (pass --participant-started-at to backup-manifest.sh)" "$details"
  fi
}

check_dars_covered() {
  local out="$work/dars.ndjson" rc=0 details counts n_missing n_after n_before missing msg
  if [[ "$has_dar_list" != 1 ]]; then
    add_check dars-covered fail "the manifest has no DAR list (.dars.items)" '{}'
    return
  fi
  "$dar_sync" diff --registry >"$out" || rc=$?
  if [[ "$rc" -ne 0 ]]; then
    msg=$(tool_error "$out")
    if [[ "$rc" -eq 3 ]]; then
      add_check dars-covered unavailable "dar-sync could not reach the node or the Integration DB: ${msg:-exit $rc}" "{\"exitCode\":$rc}"
    else
      add_check dars-covered fail "dar-sync diff --registry failed (exit $rc): ${msg:-see stderr}" "{\"exitCode\":$rc}"
    fi
    return
  fi
  # With --registry alone, the registry's entries are the "present" and
  # "missing" lines. Line 1: counts and names; line 2: the details.
  {
    IFS= read -r counts
    IFS= read -r details
  } < <(jq -rs --slurpfile m "$manifest_doc" --arg bt "$backup_time" '
      ($m[0].dars.items | map(.mainPackageId)) as $listed
      | [ .[] | select(.type == "present" or .type == "missing") ] as $registry
      | ($registry | map(select((.uploadedAt // "") < $bt))) as $before
      | {registry: ($registry | length),
         uploadedAfterBackup: ($registry | map(select((.uploadedAt // "") >= $bt)) | length),
         inManifest: ($before | map(select(.mainPackageId as $id | $listed | index($id))) | length),
         notInBackup: ($before | map(select(.mainPackageId as $id | $listed | index($id) | not))
                       | map({mainPackageId, name, version, uploadedAt}))} as $d
      | "\($d.notInBackup | length)\u001f\($d.uploadedAfterBackup)\u001f\($d.inManifest)\u001f\(
           $d.notInBackup | map("\(.name) \(.version) (\(.mainPackageId[0:12])…, uploaded \(.uploadedAt))")
           | join(", "))",
        ($d | tojson)' "$out")
  IFS=$US read -r n_missing n_after n_before missing <<<"$counts"
  if [[ "$n_missing" -gt 0 ]]; then
    add_check dars-covered fail "$n_missing registry DAR(s) uploaded before the backup are not in its DAR list, so a restore would lose them and dar-sync upload --since would not bring them back: $missing; take a new backup" "$details"
  else
    add_check dars-covered ok "$n_before registry DAR(s) are in the backup, $n_after uploaded after it will be re-uploaded by runbook A" "$details"
  fi
}

# Starts the throwaway cluster: sets pg_dir and pg_port, or leaves the error
# in $work/error.
start_throwaway() {
  local out="$work/pg-tmp.env" rc=0
  env "${unset_live[@]}" bash "$pg_tmp" start --watch-pid $$ >"$out" 2>"$work/pg-tmp.err" || rc=$?
  if [[ "$rc" -ne 0 ]]; then
    tail -n 1 "$work/pg-tmp.err" >"$work/error"
    return "$rc"
  fi
  pg_dir=$(sed -n 's/.*PGTEST_DIR=\([^ ]*\).*/\1/p' "$out")
  pg_port=$(sed -n 's/.*PGPORT=\([0-9]*\).*/\1/p' "$out")
  if [[ -z "$pg_dir" || -z "$pg_port" ]]; then
    echo "pg-tmp.sh printed no PGTEST_DIR/PGPORT" >"$work/error"
    return 3
  fi
}

# Restores the dump into database restore_check, or leaves the error in $work/error.
restore_dump() {
  local p=$1 format=$2 psql pg_restore rc=0
  local conn=(-h 127.0.0.1 -p "$pg_port" -U postgres)
  if ! psql=$(find_pg_client psql); then
    echo "psql not found (apt-get install postgresql-client)" >"$work/error"
    return 2
  fi
  env "${unset_live[@]}" "$psql" -X -q "${conn[@]}" -d postgres -v ON_ERROR_STOP=1 \
    -c 'CREATE DATABASE restore_check' >/dev/null 2>"$work/restore.err" || rc=$?
  if [[ "$rc" -eq 0 ]]; then
    case $format in
    custom | tar | directory)
      if ! pg_restore=$(find_pg_client pg_restore); then
        echo "pg_restore not found (apt-get install postgresql-client)" >"$work/error"
        return 2
      fi
      env "${unset_live[@]}" "$pg_restore" "${conn[@]}" -d restore_check --no-owner \
        --no-privileges --exit-on-error "$p" >/dev/null 2>"$work/restore.err" || rc=$?
      ;;
    plain)
      env "${unset_live[@]}" "$psql" -X -q "${conn[@]}" -d restore_check -v ON_ERROR_STOP=1 \
        -f "$p" >/dev/null 2>"$work/restore.err" || rc=$?
      ;;
    plain-gzip)
      gzip -dc "$p" | env "${unset_live[@]}" "$psql" -X -q "${conn[@]}" -d restore_check \
        -v ON_ERROR_STOP=1 >/dev/null 2>"$work/restore.err" || rc=$?
      ;;
    *)
      echo "unknown dump format '$format'" >"$work/restore.err"
      rc=2
      ;;
    esac
  fi
  if [[ "$rc" -ne 0 ]]; then
    { grep -m 1 -i 'error' "$work/restore.err" || tail -n 1 "$work/restore.err"; } >"$work/error"
    return "$rc"
  fi
}

# Runs an Integration DB tool against the restored copy.
on_restored() {
  env "${unset_live[@]}" INTEGRATION_DB_URL="postgresql://postgres@127.0.0.1:$pg_port/restore_check" "$@"
}

check_integration_db_restore() {
  local p rc=0 details out="$work/restored-status.json" summary has_checkpoint has_last offset rt
  if [[ "$has_idb" != 1 ]]; then
    add_check integration-db-restore skipped "the manifest records no Integration DB dump (backup-manifest.sh --integration-db-dump)" '{}'
    return
  fi
  p=$(resolve_path "$idb_path")
  local format=${idb_format:-custom}
  details="{\"path\":$(json_str "$p"),\"format\":$(json_str "$format")}"
  if [[ ! -e "$p" ]]; then
    add_check integration-db-restore fail "Integration DB dump $p is missing" "$details"
    return
  fi
  log "restoring the Integration DB dump $p ($format) into a throwaway PostgreSQL"
  if ! start_throwaway; then
    # pg-tmp.sh: 2 = PostgreSQL not installed, 3 = the server did not start.
    add_check integration-db-restore unavailable "cannot start a throwaway PostgreSQL: $(cat "$work/error")" "$details"
    return
  fi
  if ! restore_dump "$p" "$format"; then
    add_check integration-db-restore fail "the Integration DB dump does not restore: $(cat "$work/error")" "$details"
    return
  fi
  # What a real restore does next: bring the schema to this version of the tools.
  on_restored "$ingest_ctl" migrate >"$work/migrate.json" || rc=$?
  if [[ "$rc" -ne 0 ]]; then
    add_check integration-db-restore fail "the restored Integration DB cannot be migrated: $(tool_error "$work/migrate.json")" "$details"
    return
  fi
  on_restored env -u CANTON_LEDGER_API "$ingest_ctl" --ingester "$ingester" status >"$out" || rc=$?
  if [[ "$rc" -ne 0 ]]; then
    add_check integration-db-restore fail "the restored Integration DB has no readable checkpoint for ingester $ingester (ingest-ctl status, exit $rc): $(tool_error "$out")" "$details"
    return
  fi
  # Line 1: summary; line 2: the details; line 3: the last transaction (or null).
  {
    IFS= read -r summary
    IFS= read -r details
    IFS= read -r last
  } < <(jq -rs --argjson d "$details" --arg i "$ingester" '
      (map(select(.type == "status")) | last) as $s
      | "\(if $s.checkpoint == null then 0 else 1 end)\u001f\(if $s.lastTransaction == null then 0 else 1 end)\u001f\($s.checkpoint.offset)\u001f\($s.checkpoint.recordTime)",
        ($d + {ingester: $i, checkpoint: $s.checkpoint, lastTransaction: $s.lastTransaction} | tojson),
        ($s.lastTransaction | tojson)' "$out")
  IFS=$US read -r has_checkpoint has_last offset rt <<<"$summary"
  if [[ "$has_checkpoint" != 1 ]]; then
    add_check integration-db-restore fail "the restored Integration DB holds no checkpoint for ingester $ingester" "$details"
    return
  fi
  [[ "$has_last" == 1 ]] && printf '%s\n' "$last" >"$work/restored-last.json"
  add_check integration-db-restore ok "restores; checkpoint of $ingester at offset $offset, record time $rt" "$details"
  bash "$pg_tmp" stop "$pg_dir" >/dev/null 2>&1 || true
  pg_dir=""
}

check_checkpoint_lookup() {
  local input="$work/lookup-input.json" source out="$work/lookup.json" rc=0 details msg summary
  if [[ -s "$work/restored-last.json" ]]; then
    cp "$work/restored-last.json" "$input"
    source=restored-integration-db
  elif [[ "$has_last_tx" == 1 ]]; then
    jq -c '.ingestion.lastTransaction' "$manifest_doc" >"$input"
    source=manifest
  else
    add_check checkpoint-lookup skipped "no ingested transaction in the backup to look up" '{}'
    return
  fi
  "$offset_lookup" - <"$input" >"$out" || rc=$?
  # Line 1: record time and offset; line 2: the details.
  {
    IFS= read -r summary
    IFS= read -r details
  } < <(jq -rn --arg src "$source" --slurpfile in "$input" --rawfile out "$out" '
      ($in[0]) as $i
      | ($out | split("\n") | map(select(. != "") | (try fromjson catch null))
         | map(select(type == "object" and .type == "offset")) | last) as $o
      | "\($i.recordTime)\u001f\($o.offset // "")",
        ({source: $src, synchronizerId: $i.synchronizerId, recordTime: $i.recordTime}
         + (if $o == null then {} else {offset: $o.offset} end) | tojson)')
  local rt offset
  IFS=$US read -r rt offset <<<"$summary"
  case $rc in
  0)
    add_check checkpoint-lookup ok "record time $rt ($source) resolves to offset $offset on the node" "$details"
    ;;
  3 | 4)
    msg=$(tool_error "$out")
    add_check checkpoint-lookup unavailable "offset-lookup could not get an answer from the node (exit $rc): ${msg:-see stderr}" "$details"
    ;;
  *)
    msg=$(tool_error "$out")
    add_check checkpoint-lookup fail "the node cannot resolve record time $rt ($source) to an offset (exit $rc): ${msg:-see stderr}; runbook A step 5 would fail with this backup" "$details"
    ;;
  esac
}

# ---------------------------------------------------------------------------
# Report and metrics

write_atomically() {
  local dest=$1 tmp dir
  dir=$(dirname "$dest")
  [[ -d "$dir" ]] || { log "warning: directory $dir of $dest does not exist; not written"; return 1; }
  tmp=$(mktemp "$dir/.$(basename "$dest").XXXXXX") || return 1
  if cat >"$tmp" && chmod 644 "$tmp" && mv -f "$tmp" "$dest"; then
    return 0
  fi
  rm -f "$tmp"
  log "warning: cannot write $dest"
  return 1
}

textfile_metrics() {
  local report=$1 previous=$2
  jq -j --arg prev "$previous" '
    (if .exitCode == 0 then .checkedAtUnix else ($prev | tonumber? // 0) end) as $success
    | def gauge(name; help): "# HELP \(name) \(help)\n# TYPE \(name) gauge";
    def esc: gsub("\\\\"; "\\\\\\\\") | gsub("\""; "\\\"");
    [ gauge("canton_dr_verify_last_success_timestamp_seconds";
        "Unix time of the last verify-backup.sh run that exited 0 (kept from the previous file otherwise)."),
      "canton_dr_verify_last_success_timestamp_seconds \($success)",
      gauge("canton_dr_verify_last_run_timestamp_seconds"; "Unix time of the last verify-backup.sh run."),
      "canton_dr_verify_last_run_timestamp_seconds \(.checkedAtUnix)",
      gauge("canton_dr_verify_exit_code";
        "Exit code of the last run: 0 ok or warn, 1 a check failed or none ran, 3 unavailable."),
      "canton_dr_verify_exit_code \(.exitCode)",
      gauge("canton_dr_verify_checks_run"; "Checks that ran in the last run (0 means nothing was verified)."),
      "canton_dr_verify_checks_run \(.summary.ran)",
      ( if .backupAgeSeconds != null then
          gauge("canton_dr_backup_age_seconds"; "Age of the newest validator backup (now - its backupTime)."),
          "canton_dr_backup_age_seconds \(.backupAgeSeconds)",
          gauge("canton_dr_backup_timestamp_seconds"; "Unix time of the newest validator backup."),
          "canton_dr_backup_timestamp_seconds \(.backupTimeUnix)"
        else empty end ),
      gauge("canton_dr_verify_check"; "1 when the check passed (ok or warn), 0 when it failed or could not run; skipped checks are absent."),
      ( .checks[] | select(.status != "skipped")
        | "canton_dr_verify_check{check=\"\(.check | esc)\"} \(if .status == "ok" or .status == "warn" then 1 else 0 end)" ),
      gauge("canton_dr_verify_check_warning"; "1 when the check passed with a warning."),
      ( .checks[] | "canton_dr_verify_check_warning{check=\"\(.check | esc)\"} \(if .status == "warn" then 1 else 0 end)" ),
      gauge("canton_dr_verify_check_skipped"; "1 when the check was skipped."),
      ( .checks[] | "canton_dr_verify_check_skipped{check=\"\(.check | esc)\"} \(if .status == "skipped" then 1 else 0 end)" )
    ] | join("\n") + "\n"' <<<"$report"
}

# A flag's value: a usage error when the flag is last or its value is empty.
need() {
  [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value" "see: verify-backup.sh --help"
}

main() {
  local manifest_arg=${BACKUP_MANIFEST:-}
  local max_age_arg=${VERIFY_BACKUP_MAX_AGE:-4h} warn_age_arg=${VERIFY_BACKUP_WARN_AGE:-25d}
  local fail_age_arg=${VERIFY_BACKUP_FAIL_AGE:-30d}
  local report_file=${VERIFY_BACKUP_REPORT:-} textfile=${VERIFY_BACKUP_TEXTFILE:-}
  local fail_on_warn=${VERIFY_BACKUP_FAIL_ON_WARN:-0}
  no_hash=${VERIFY_BACKUP_NO_HASH:-0}
  ingester=${INGESTER_NAME:-}
  skip=()
  if [[ -n "${VERIFY_BACKUP_SKIP:-}" ]]; then
    IFS=, read -r -a skip <<<"$VERIFY_BACKUP_SKIP"
  fi
  while [[ $# -gt 0 ]]; do
    case $1 in
    --manifest) need "$@"; manifest_arg=$2; shift 2 ;;
    --max-age) need "$@"; max_age_arg=$2; shift 2 ;;
    --warn-age) need "$@"; warn_age_arg=$2; shift 2 ;;
    --fail-age) need "$@"; fail_age_arg=$2; shift 2 ;;
    --skip) need "$@"; skip+=("$2"); shift 2 ;;
    --no-hash) no_hash=1; shift ;;
    --fail-on-warn) fail_on_warn=1; shift ;;
    --report) need "$@"; report_file=$2; shift 2 ;;
    --textfile) need "$@"; textfile=$2; shift 2 ;;
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
    --ingester) need "$@"; ingester=$2; shift 2 ;;
    --bin-dir) need "$@"; export CANTON_DR_BIN_DIR=$2; shift 2 ;;
    -h | --help) usage ;;
    *) die "unknown argument '$1'" "see: verify-backup.sh --help" ;;
    esac
  done
  case $no_hash in 1 | true | yes) no_hash=1 ;; *) no_hash=0 ;; esac
  case $fail_on_warn in 1 | true | yes) fail_on_warn=1 ;; *) fail_on_warn=0 ;; esac

  command -v jq >/dev/null 2>&1 || die "jq is not installed" "apt-get install jq"
  [[ -n "$manifest_arg" ]] || die "--manifest is required" "pass the manifest file, or the directory backup-manifest.sh --out-dir writes to"
  max_age=$(duration_seconds "$max_age_arg" --max-age)
  warn_age=$(duration_seconds "$warn_age_arg" --warn-age)
  fail_age=$(duration_seconds "$fail_age_arg" --fail-age)
  [[ "$warn_age" -le "$fail_age" ]] || die "--warn-age ($warn_age_arg) is longer than --fail-age ($fail_age_arg)"
  local c k known
  for c in "${skip[@]}"; do
    [[ "$c" != manifest ]] || die "the manifest check cannot be skipped: every other check needs it"
    known=0
    for k in "${CHECKS[@]}"; do [[ "$k" == "$c" ]] && known=1; done
    [[ "$known" -eq 1 ]] || die "--skip '$c' is not a check" "checks: ${CHECKS[*]:1}"
  done
  local live=0
  [[ -n "${CANTON_ADMIN_API:-}" ]] && live=1
  dar_sync=$(find_tool dar-sync)
  ingest_ctl=$(find_tool ingest-ctl)
  offset_lookup=$(find_tool offset-lookup)
  pg_tmp=${PG_TMP:-$(dirname "$SELF")/pg-tmp.sh}
  [[ -f "$pg_tmp" ]] || die "scripts/pg-tmp.sh not found at $pg_tmp" "set PG_TMP to its path"
  unset_live=()
  for c in "${LIVE_PG_VARS[@]}"; do unset_live+=(-u "$c"); done
  export CANTON_DR_OUTPUT=json
  : >"$work/checks.us"

  local started_us
  started_us=$(now_micros)
  backup_age_us=""
  manifest_path=""
  backup_time=""
  if check_manifest "$manifest_arg"; then
    backup_age_us=$((started_us - backup_us))
    [[ -n "$ingester" ]] || ingester=${manifest_ingester:-tx-ingest}
    local name
    for name in "${CHECKS[@]:1}"; do
      if is_skipped "$name"; then
        add_check "$name" skipped "--skip $name" '{}'
        continue
      fi
      case $name in
      backup-files) check_backup_files ;;
      backup-age) check_backup_age ;;
      restore-window) check_restore_window ;;
      dump-order) check_dump_order ;;
      dars-covered)
        if [[ "$live" -eq 1 ]]; then check_dars_covered; else
          add_check dars-covered skipped "no live node: pass --admin-api (CANTON_ADMIN_API) to compare the registry with the backup's DARs" '{}'
        fi
        ;;
      integration-db-restore) check_integration_db_restore ;;
      checkpoint-lookup)
        if [[ "$live" -eq 1 ]]; then check_checkpoint_lookup; else
          add_check checkpoint-lookup skipped "no live node: pass --admin-api (CANTON_ADMIN_API) to look the checkpoint up" '{}'
        fi
        ;;
      esac
    done
  else
    for name in "${CHECKS[@]:1}"; do
      add_check "$name" skipped "no usable manifest" '{}'
    done
  fi

  local now_us report status exit_code line summary
  now_us=$(now_micros)
  # Line 1: status, exit code, summary for the log; line 2: the report.
  {
    IFS= read -r line
    IFS= read -r report
  } < <(jq -Rrs --arg kind "$KIND" --argjson v "$SCHEMA_VERSION" \
    --arg at "$(micros_to_rfc3339 "$now_us")" --argjson at_unix "$((now_us / 1000000))" \
    --arg mp "$manifest_path" --argjson age "${backup_age_us:-null}" \
    --argjson bt_unix "${backup_us:-null}" --argjson fail_on_warn "$fail_on_warn" '
      split("\n") | map(select(. != "") | split("\u001f")
        | {check: .[0], status: .[1], message: .[2], details: (.[3] | fromjson)})
      | . as $checks
      | ($checks | map(select(.check == "manifest")) | .[0]) as $manifest
      | ($checks | map(select(.check != "manifest"))) as $backup_checks
      | ($backup_checks | map(select(.status != "skipped")) | length) as $ran
      | def count(s): $backup_checks | map(select(.status == s)) | length;
      (if $manifest.status != "ok" or count("fail") > 0 then "fail"
       elif count("unavailable") > 0 then "unavailable"
       elif $ran == 0 then "unknown"
       elif count("warn") > 0 then "warn"
       else "ok" end) as $status
      | {kind: $kind, schemaVersion: $v, type: "verify-backup", status: $status,
         exitCode: (if $status == "ok" then 0
                    elif $status == "warn" then (if $fail_on_warn == 1 then 1 else 0 end)
                    elif $status == "unavailable" then 3
                    else 1 end),
         checkedAt: $at, checkedAtUnix: $at_unix,
         manifest: (if $mp == "" then null else $mp end),
         backupId: ($manifest.details.backupId // null),
         backupTime: ($manifest.details.backupTime // null),
         backupTimeUnix: (if $bt_unix == null then null else ($bt_unix / 1000000 | floor) end),
         backupAgeSeconds: (if $age == null then null else ($age / 1000000 | floor) end),
         summary: {manifest: $manifest.status, ran: $ran, ok: count("ok"), warn: count("warn"),
                   fail: count("fail"), unavailable: count("unavailable"),
                   skipped: count("skipped")},
         checks: $checks}
      | ("\(.status)\u001f\(.exitCode)\u001f" + (.summary
          | "manifest \(.manifest); \(.ran) check(s) ran: \(.ok) ok, \(.warn) warn, \(.fail) fail, \(.unavailable) unavailable; \(.skipped) skipped")),
        tojson' "$work/checks.us")
  IFS=$US read -r status exit_code summary <<<"$line"
  [[ -n "$report" && "$exit_code" =~ ^[0-9]+$ ]] || die "cannot assemble the report" "" 2
  if [[ -n "$report_file" ]]; then
    printf '%s\n' "$report" | write_atomically "$report_file" || true
  fi
  if [[ -n "$textfile" ]]; then
    local previous=""
    if [[ -f "$textfile" ]]; then
      previous=$(sed -n 's/^canton_dr_verify_last_success_timestamp_seconds \([0-9.e+]*\)$/\1/p' "$textfile" | tail -n 1)
    fi
    # $(...) would drop the final newline that the textfile format needs: pipe.
    textfile_metrics "$report" "$previous" | write_atomically "$textfile" || true
  fi
  log "status $status (exit $exit_code): $summary"
  : >"$work/emitted"
  echo "$report"
  exit "$exit_code"
}

main "$@"
