#!/usr/bin/env bash
# Builds one libFuzzer target (with the address sanitizer) and fuzzes it.
#
#   scripts/fuzz.sh TARGET SECONDS [RUNS]
#   scripts/fuzz.sh --list
#
# TARGET is gguf, tokenizer, chat-template, plan or request. The run stops after SECONDS or,
# when given, RUNS executions, whichever comes first. It starts from the committed seeds in
# Fuzz/Corpus/TARGET and the dictionary in Fuzz/Dictionaries (when there is one); everything it
# writes goes outside the repository, under $STRATA_FUZZ_WORK (default ~/.cache/strata/fuzz):
#   TARGET/corpus/     inputs that reached new code
#   TARGET/crashes/    crashers, hangs (timeout-*) and memory blow-ups (oom-*)
#   TARGET/runs.jsonl  one line per run: executions, seconds, coverage, outcome
# Exit status: 0 when the run ended with no finding, 1 on a crash, hang or memory blow-up,
# 2 on a usage or build error. Replay a crasher with: .../fuzz-TARGET CRASHFILE
#
# Limits per input: 10 s (a hang), 2048 MB of RSS and 1024 MB in one allocation.
# The tokenizer target reads SmolLM2's vocabulary (fetched here when missing) and llama.cpp's
# Llama 2 SentencePiece test vocabulary from the test fixtures.
set -euo pipefail

targets="gguf tokenizer chat-template plan request"
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "fuzz.sh: $*" >&2; exit 2; }

[ "${1:-}" = "--list" ] && { echo "$targets" | tr ' ' '\n'; exit 0; }
[ $# -ge 2 ] && [ $# -le 3 ] || usage
target="$1" seconds="$2" runs="${3:-}"
case " $targets " in *" $target "*) ;; *) die "unknown target '$target' (known: $targets)" ;; esac
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a positive whole number, found '$seconds'"
[ -z "$runs" ] || [[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive whole number, found '$runs'"

root="$(cd "$(dirname "$0")/.." && pwd)"
work="${STRATA_FUZZ_WORK:-$HOME/.cache/strata/fuzz}/$target"
build="${STRATA_FUZZ_BUILD:-$HOME/.cache/strata/fuzz-build}"
mkdir -p "$work/corpus" "$work/crashes"

if [ "$target" = tokenizer ] && [ -z "${STRATA_FUZZ_VOCABULARIES:-}" ]; then
  "$root/scripts/fetch-models.sh" smollm2-135m >&2
  # byte-level BPE (SmolLM2) and SentencePiece (llama.cpp's Llama 2 test vocabulary)
  export STRATA_FUZZ_VOCABULARIES="${STRATA_MODELS:-$HOME/.cache/strata/models}/smollm2-135m.gguf:$root/Tests/StrataTokenizerTests/Fixtures/llama-cpp-vocab/ggml-vocab-llama-spm.gguf"
fi

echo "fuzz.sh: building fuzz-$target (release, libFuzzer + address sanitizer) in $build" >&2
# `--sanitize fuzzer` makes SwiftPM link libFuzzer's main; the sanitizers themselves come as
# ONE -sanitize= list, because swiftc keeps only the last of several -sanitize= flags (SwiftPM's
# `--sanitize fuzzer --sanitize address` leaves Swift code without coverage counters).
( cd "$root" && STRATA_FUZZ=1 swift build -c release --product "fuzz-$target" --scratch-path "$build" \
    --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address ) >&2 \
  || die "the build of fuzz-$target failed"
binary="$build/release/fuzz-$target"
[ -x "$binary" ] || die "no binary at $binary after the build"

options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024
         -artifact_prefix="$work/crashes/" -print_final_stats=1)
[ -n "$runs" ] && options+=(-runs="$runs")
dictionary="$root/Fuzz/Dictionaries/$target.dict"
[ -f "$dictionary" ] && options+=(-dict="$dictionary")

log="$work/last-run.log"
echo "fuzz.sh: fuzzing $target for at most ${seconds}s${runs:+ or $runs runs}; log in $log" >&2
started=$(date +%s)
set +e
# Swift's runtime keeps metadata caches for the life of the process, which LeakSanitizer
# reports as leaks on every exit; leaks are not what this looks for.
# Swift's own crash backtracer would wait on the crashed process; libFuzzer reports crashes itself.
SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}" "$binary" "${options[@]}" "$work/corpus" "$root/Fuzz/Corpus/$target" >"$log" 2>&1
status=$?
set -e
elapsed=$(( $(date +%s) - started ))

executions=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
features=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
corpus=$(find "$work/corpus" -type f | wc -l)
if [ $status -eq 0 ]; then outcome=clean; else outcome=finding; fi
printf '{"target":"%s","date":"%s","seconds":%s,"executions":%s,"coverage":%s,"features":%s,"corpus":%s,"outcome":"%s","cpu":"%s"}\n' \
  "$target" "$(date -u +%FT%TZ)" "$elapsed" "${executions:-0}" "${coverage:-0}" "${features:-0}" "$corpus" "$outcome" \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" | tee -a "$work/runs.jsonl"
if [ $status -ne 0 ]; then
  echo "fuzz.sh: fuzz-$target found a problem (exit $status); the input is in $work/crashes/:" >&2
  grep -E 'ERROR|Fatal error|broken promise|Test unit written' "$log" | head -20 >&2
  exit 1
fi
