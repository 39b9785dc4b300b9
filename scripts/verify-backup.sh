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
    emit_error "unexpected failure (exit $rc); see the messages above" "" 2
    rc=2
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

emit_error() {
  local msg=$1 hint=$2 code=$3 status=usage-error
  [[ "$code" -eq 3 ]] && status=unavailable
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

# Records one check result: add_check NAME STATUS MESSAGE [DETAILS-JSON].
add_check() {
  local name=$1 status=$2 msg=$3 details=${4:-"{}"}
  jq -cn --arg c "$name" --arg s "$status" --arg m "$msg" --argjson d "$details" \
    '{check: $c, status: $s, message: $m, details: $d}' >>"$work/checks.ndjson"
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
  local p=$1 f best="" best_time="" t
  if [[ -d "$p" ]]; then
    shopt -s nullglob
    for f in "$p"/*.json; do
      t=$(jq -r --arg k "$MANIFEST_KIND" 'select(.kind == $k) | .backupTime // empty' "$f" 2>/dev/null || true)
      [[ -n "$t" ]] || continue
      if [[ -z "$best" || "$t" > "$best_time" ]]; then
        best=$f
        best_time=$t
      fi
    done
    shopt -u nullglob
    echo "$best"
  else
    echo "$p"
  fi
}

check_manifest() {
  local p=$1 v kind
  if [[ -d "$p" ]]; then
    manifest_path=$(pick_manifest "$p")
    if [[ -z "$manifest_path" ]]; then
      add_check manifest fail "no backup manifest in $p: has backup-manifest.sh run after the backups?" \
        "$(jq -cn --arg d "$p" '{directory: $d}')"
      return 1
    fi
  else
    manifest_path=$p
  fi
  if [[ ! -f "$manifest_path" ]]; then
    add_check manifest fail "manifest $manifest_path does not exist: has backup-manifest.sh run after the backups?" \
      "$(jq -cn --arg f "$manifest_path" '{path: $f}')"
    return 1
  fi
  manifest_path=$(readlink -f "$manifest_path")
  if ! jq -e 'type == "object"' "$manifest_path" >/dev/null 2>&1; then
    add_check manifest fail "manifest $manifest_path is not a JSON object" \
      "$(jq -cn --arg f "$manifest_path" '{path: $f}')"
    return 1
  fi
  kind=$(jq -r '.kind // ""' "$manifest_path")
  v=$(jq -r '.schemaVersion // 0' "$manifest_path")
  if [[ "$kind" != "$MANIFEST_KIND" ]]; then
    add_check manifest fail "$manifest_path is not a backup manifest (kind \"$kind\", want \"$MANIFEST_KIND\")" \
      "$(jq -cn --arg f "$manifest_path" '{path: $f}')"
    return 1
  fi
  if [[ "$v" != "$MANIFEST_SCHEMA_VERSION" ]]; then
    add_check manifest fail "manifest schema version $v is not $MANIFEST_SCHEMA_VERSION: use the verify-backup.sh that matches backup-manifest.sh" \
      "$(jq -cn --arg f "$manifest_path" --arg v "$v" '{path: $f, schemaVersion: $v}')"
    return 1
  fi
  backup_time=$(jq -r '.backupTime // ""' "$manifest_path")
  if ! backup_us=$(to_micros "$backup_time"); then
    add_check manifest fail "manifest $manifest_path has no valid backupTime ('$backup_time')" \
      "$(jq -cn --arg f "$manifest_path" '{path: $f}')"
    return 1
  fi
  manifest_dir=$(dirname "$manifest_path")
  add_check manifest ok "backup $(jq -r .backupId "$manifest_path") taken at $backup_time" \
    "$(jq -c --arg f "$manifest_path" '{path: $f, backupId, backupTime, createdAt}' "$manifest_path")"
}

# An artifact's path as recorded, relative ones against the manifest's directory.
artifact_path() {
  local p
  p=$(jq -r --arg a "$1" '.artifacts[$a].path // ""' "$manifest_path")
  [[ -z "$p" || "$p" == /* ]] && { echo "$p"; return; }
  echo "$manifest_dir/$p"
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

check_backup_files() {
  local a p want_size want_sha want_type size sha type problems=() checked=()
  local names=(validatorApp participant integrationDb identities)
  for a in "${names[@]}"; do
    if [[ "$(jq -r --arg a "$a" '.artifacts[$a] == null' "$manifest_path")" == true ]]; then
      if [[ "$a" == validatorApp || "$a" == participant ]]; then
        problems+=("the manifest records no $a dump")
      fi
      continue
    fi
    p=$(artifact_path "$a")
    want_type=$(jq -r --arg a "$a" '.artifacts[$a].type // "file"' "$manifest_path")
    want_size=$(jq -r --arg a "$a" '.artifacts[$a].size // -1' "$manifest_path")
    want_sha=$(jq -r --arg a "$a" '.artifacts[$a].sha256 // ""' "$manifest_path")
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
  done
  local details
  details=$(jq -cn --argjson hashed "$([[ "$no_hash" -eq 0 ]] && echo true || echo false)" \
    --arg checked "${checked[*]}" --arg problems "$(printf '%s\n' "${problems[@]}")" \
    '{hashed: $hashed, verified: ($checked | split(" ") | map(select(. != ""))),
      problems: ($problems | split("\n") | map(select(. != "")))}')
  if [[ "${#problems[@]}" -gt 0 ]]; then
    add_check backup-files fail "$(printf '%s; ' "${problems[@]}" | sed 's/; $//')" "$details"
  elif [[ "$no_hash" -eq 1 ]]; then
    add_check backup-files ok "${#checked[@]} dump(s) present with the recorded sizes (sha256 not checked: --no-hash)" "$details"
  else
    add_check backup-files ok "${#checked[@]} dump(s) present with the recorded sizes and sha256" "$details"
  fi
}

check_backup_age() {
  local age_s=$((backup_age_us / 1000000))
  local details
  details=$(jq -cn --argjson age "$age_s" --argjson max "$max_age" --arg bt "$backup_time" \
    '{backupTime: $bt, ageSeconds: $age, maxAgeSeconds: $max}')
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
  details=$(jq -cn --argjson age "$age_s" --argjson w "$warn_age" --argjson f "$fail_age" \
    '{ageSeconds: $age, warnAgeSeconds: $w, failAgeSeconds: $f}')
  if [[ "$age_s" -ge "$fail_age" ]]; then
    add_check restore-window fail "newest backup is $(human_duration "$age_s") old: a participant restored from it is more than $(human_duration "$fail_age") behind and cannot catch up (sequencers prune after 30 days)" "$details"
  elif [[ "$age_s" -ge "$warn_age" ]]; then
    add_check restore-window warn "newest backup is $(human_duration "$age_s") old: it leaves $(human_duration $((fail_age - age_s))) until it is useless (limit $(human_duration "$fail_age"))" "$details"
  else
    add_check restore-window ok "restorable for another $(human_duration $((fail_age - age_s))) (limit $(human_duration "$fail_age"))" "$details"
  fi
}

check_dump_order() {
  local app_end p_start p_end app_end_us p_start_us p_end_us details
  app_end=$(jq -r '.artifacts.validatorApp.finishedAt // ""' "$manifest_path")
  p_start=$(jq -r '.artifacts.participant.startedAt // ""' "$manifest_path")
  p_end=$(jq -r '.artifacts.participant.finishedAt // ""' "$manifest_path")
  details=$(jq -c '{validatorAppFinishedAt: .artifacts.validatorApp.finishedAt,
      participantStartedAt: .artifacts.participant.startedAt,
      participantStartedAtSource: .artifacts.participant.startedAtSource,
      participantFinishedAt: .artifacts.participant.finishedAt}' "$manifest_path")
  if ! app_end_us=$(to_micros "$app_end") || ! p_end_us=$(to_micros "$p_end"); then
    add_check dump-order fail "the manifest lacks the validator-app or participant dump times" "$details"
    return
  fi
  if [[ -n "$p_start" ]] && p_start_us=$(to_micros "$p_start"); then
    if [[ "$app_end_us" -lt "$p_start_us" ]]; then
      local gap=$((p_start_us - app_end_us))
      if [[ "$gap" -lt 60000000 ]]; then
        gap=$(printf '%d.%03ds' $((gap / 1000000)) $((gap % 1000000 / 1000)))
      else
        gap=$(human_duration $((gap / 1000000)))
      fi
      add_check dump-order ok "validator-app dump finished $gap before the participant dump started" "$details"
    else
      add_check dump-order fail "validator-app dump finished at $app_end, not before the participant dump started at $p_start: Splice requires the app state to be strictly older; take both again, app first" "$details"
    fi
  elif [[ "$app_end_us" -ge "$p_end_us" ]]; then
    add_check dump-order fail "validator-app dump finished at $app_end, after the participant dump finished at $p_end: take both again, app first" "$details"
  else
    add_check dump-order warn "the participant dump's start time is unknown: the app-before-participant order cannot be proven (pass --participant-started-at to backup-manifest.sh)" "$details"
  fi
}

check_dars_covered() {
  local out="$work/dars.ndjson" rc=0 details missing n_missing n_after n_before
  if [[ "$(jq -r '.dars.items | type' "$manifest_path")" != array ]]; then
    add_check dars-covered fail "the manifest has no DAR list (.dars.items)" '{}'
    return
  fi
  "$dar_sync" diff --registry >"$out" || rc=$?
  if [[ "$rc" -ne 0 ]]; then
    local msg
    msg=$(tool_error "$out")
    if [[ "$rc" -eq 3 ]]; then
      add_check dars-covered unavailable "dar-sync could not reach the node or the Integration DB: ${msg:-exit $rc}" \
        "$(jq -cn --argjson rc "$rc" '{exitCode: $rc}')"
    else
      add_check dars-covered fail "dar-sync diff --registry failed (exit $rc): ${msg:-see stderr}" \
        "$(jq -cn --argjson rc "$rc" '{exitCode: $rc}')"
    fi
    return
  fi
  # The registry's entries are the "present" and "missing" lines (--registry only).
  details=$(jq -cs --slurpfile m "$manifest_path" --arg bt "$backup_time" '
      ($m[0].dars.items | map(.mainPackageId)) as $listed
      | [ .[] | select(.type == "present" or .type == "missing") ] as $registry
      | ($registry | map(select((.uploadedAt // "") < $bt))) as $before
      | {registry: ($registry | length),
         uploadedAfterBackup: ($registry | map(select((.uploadedAt // "") >= $bt)) | length),
         inManifest: ($before | map(select(.mainPackageId as $id | $listed | index($id))) | length),
         notInBackup: ($before | map(select(.mainPackageId as $id | $listed | index($id) | not))
                       | map({mainPackageId, name, version, uploadedAt}))}' "$out")
  n_missing=$(jq '.notInBackup | length' <<<"$details")
  n_after=$(jq '.uploadedAfterBackup' <<<"$details")
  n_before=$(jq '.inManifest' <<<"$details")
  if [[ "$n_missing" -gt 0 ]]; then
    missing=$(jq -r '.notInBackup | map("\(.name) \(.version) (\(.mainPackageId[0:12])…, uploaded \(.uploadedAt))") | join(", ")' <<<"$details")
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
  local p format rc=0 details out="$work/restored-status.json"
  if [[ "$(jq -r '.artifacts.integrationDb == null' "$manifest_path")" == true ]]; then
    add_check integration-db-restore skipped "the manifest records no Integration DB dump (backup-manifest.sh --integration-db-dump)" '{}'
    return
  fi
  p=$(artifact_path integrationDb)
  format=$(jq -r '.artifacts.integrationDb.format // "custom"' "$manifest_path")
  details=$(jq -cn --arg p "$p" --arg f "$format" '{path: $p, format: $f}')
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
  rc=0
  on_restored "$ingest_ctl" migrate >"$work/migrate.json" || rc=$?
  if [[ "$rc" -ne 0 ]]; then
    add_check integration-db-restore fail "the restored Integration DB cannot be migrated: $(tool_error "$work/migrate.json")" "$details"
    return
  fi
  rc=0
  on_restored env -u CANTON_LEDGER_API "$ingest_ctl" --ingester "$ingester" status >"$out" || rc=$?
  if [[ "$rc" -ne 0 ]]; then
    add_check integration-db-restore fail "ingest-ctl status on the restored Integration DB failed (exit $rc): $(tool_error "$out")" "$details"
    return
  fi
  details=$(jq -cs --argjson d "$details" --arg i "$ingester" \
    '(map(select(.type == "status")) | last) as $s
     | $d + {ingester: $i, checkpoint: $s.checkpoint, lastTransaction: $s.lastTransaction}' "$out")
  if [[ "$(jq -r '.checkpoint == null' <<<"$details")" == true ]]; then
    add_check integration-db-restore fail "the restored Integration DB holds no checkpoint for ingester $ingester" "$details"
    return
  fi
  if [[ "$(jq -r '.lastTransaction == null' <<<"$details")" == false ]]; then
    jq -c '.lastTransaction' <<<"$details" >"$work/restored-last.json"
  fi
  add_check integration-db-restore ok "restores; checkpoint of $ingester at offset $(jq -r .checkpoint.offset <<<"$details"), record time $(jq -r .checkpoint.recordTime <<<"$details")" "$details"
  bash "$pg_tmp" stop "$pg_dir" >/dev/null 2>&1 || true
  pg_dir=""
}

check_checkpoint_lookup() {
  local input="$work/lookup-input.json" source out="$work/lookup.json" rc=0 details msg
  if [[ -s "$work/restored-last.json" ]]; then
    cp "$work/restored-last.json" "$input"
    source=restored-integration-db
  elif [[ "$(jq -r '.ingestion.lastTransaction == null' "$manifest_path")" == false ]]; then
    jq -c '.ingestion.lastTransaction' "$manifest_path" >"$input"
    source=manifest
  else
    add_check checkpoint-lookup skipped "no ingested transaction in the backup to look up" '{}'
    return
  fi
  "$offset_lookup" - <"$input" >"$out" || rc=$?
  details=$(jq -c --arg src "$source" '{source: $src, synchronizerId, recordTime}' "$input")
  case $rc in
  0)
    details=$(jq -cs --argjson d "$details" '$d + {offset: (map(select(.type == "offset")) | last | .offset)}' "$out")
    add_check checkpoint-lookup ok "record time $(jq -r .recordTime <<<"$details") ($source) resolves to offset $(jq -r .offset <<<"$details") on the node" "$details"
    ;;
  3 | 4)
    msg=$(tool_error "$out")
    add_check checkpoint-lookup unavailable "offset-lookup could not get an answer from the node (exit $rc): ${msg:-see stderr}" "$details"
    ;;
  *)
    msg=$(tool_error "$out")
    add_check checkpoint-lookup fail "the node cannot resolve record time $(jq -r .recordTime <<<"$details") ($source) to an offset (exit $rc): ${msg:-see stderr}; runbook A step 5 would fail with this backup" "$details"
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
  local report=$1 previous=$2 success_ts
  success_ts=$(jq -r --arg prev "$previous" \
    'if .exitCode == 0 then .checkedAtUnix else ($prev | tonumber? // 0) end' <<<"$report")
  jq -j --argjson success "$success_ts" '
    def gauge(name; help): "# HELP \(name) \(help)\n# TYPE \(name) gauge";
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
    --manifest) manifest_arg=${2:?$1 needs a path}; shift 2 ;;
    --max-age) max_age_arg=${2:?$1 needs a duration}; shift 2 ;;
    --warn-age) warn_age_arg=${2:?$1 needs a duration}; shift 2 ;;
    --fail-age) fail_age_arg=${2:?$1 needs a duration}; shift 2 ;;
    --skip) skip+=("${2:?$1 needs a check name}"); shift 2 ;;
    --no-hash) no_hash=1; shift ;;
    --fail-on-warn) fail_on_warn=1; shift ;;
    --report) report_file=${2:?$1 needs a file}; shift 2 ;;
    --textfile) textfile=${2:?$1 needs a file}; shift 2 ;;
    --admin-api) export CANTON_ADMIN_API=${2:?$1 needs HOST:PORT}; shift 2 ;;
    --access-token-file) export CANTON_ACCESS_TOKEN_FILE=${2:?$1 needs a file}; shift 2 ;;
    --tls) export CANTON_TLS=true; shift ;;
    --ca-cert) export CANTON_CA_CERT=${2:?$1 needs a file}; shift 2 ;;
    --db-url)
      url_has_password "${2:?$1 needs a URL}" &&
        die "--db-url carries a password, which would show in ps" \
          "put the password in PGPASSWORD, or the whole URL in INTEGRATION_DB_URL"
      export INTEGRATION_DB_URL=$2
      shift 2
      ;;
    --schema) export INTEGRATION_DB_SCHEMA=${2:?$1 needs a name}; shift 2 ;;
    --ingester) ingester=${2:?$1 needs a name}; shift 2 ;;
    --bin-dir) export CANTON_DR_BIN_DIR=${2:?$1 needs a directory}; shift 2 ;;
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
  : >"$work/checks.ndjson"

  local started_us
  started_us=$(now_micros)
  backup_age_us=""
  manifest_path=""
  backup_time=""
  if check_manifest "$manifest_arg"; then
    backup_age_us=$((started_us - backup_us))
    [[ -n "$ingester" ]] || ingester=$(jq -r '.ingestion.ingester // "tx-ingest"' "$manifest_path")
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

  local now_us report status exit_code
  now_us=$(now_micros)
  report=$(jq -cs --arg kind "$KIND" --argjson v "$SCHEMA_VERSION" \
    --arg at "$(micros_to_rfc3339 "$now_us")" --argjson at_unix "$((now_us / 1000000))" \
    --arg mp "$manifest_path" --argjson age "${backup_age_us:-null}" \
    --argjson bt_unix "${backup_us:-null}" --argjson fail_on_warn "$fail_on_warn" '
      . as $checks
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
         checks: $checks}' "$work/checks.ndjson")
  status=$(jq -r .status <<<"$report")
  exit_code=$(jq -r .exitCode <<<"$report")
  if [[ -n "$report_file" ]]; then
    jq . <<<"$report" | write_atomically "$report_file" || true
  fi
  if [[ -n "$textfile" ]]; then
    local previous=""
    if [[ -f "$textfile" ]]; then
      previous=$(sed -n 's/^canton_dr_verify_last_success_timestamp_seconds \([0-9.e+]*\)$/\1/p' "$textfile" | tail -n 1)
    fi
    # $(...) would drop the final newline that the textfile format needs: pipe.
    textfile_metrics "$report" "$previous" | write_atomically "$textfile" || true
  fi
  log "status $status (exit $exit_code): $(jq -r '.summary | "manifest \(.manifest); \(.ran) check(s) ran: \(.ok) ok, \(.warn) warn, \(.fail) fail, \(.unavailable) unavailable; \(.skipped) skipped"' <<<"$report")"
  : >"$work/emitted"
  echo "$report"
  exit "$exit_code"
}

main "$@"
