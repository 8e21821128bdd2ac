#!/usr/bin/env bash
# Checks that Strata works as a dependency: builds Examples/LibraryUse (a package that depends on
# this repository by path and uses only `import StrataEngine`), runs it on a model and checks
# that its greedy text equals `strata generate --temperature 0` for the same prompt.
#
# Usage: scripts/check-library-use.sh [MODEL.gguf]   (default: the registered smollm2-135m)
# The example keeps its own build folder, Examples/LibraryUse/.build (git-ignored). The strata
# executable compared against comes from that same build of Strata, so both sides run the same
# compiled engine. STRATA_LIBRARY_USE_CONFIGURATION=release builds optimised (slower to build,
# faster to run).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
example="$root/Examples/LibraryUse"
model="${1:-${STRATA_MODELS:-$HOME/.cache/strata/models}/smollm2-135m.gguf}"
configuration="${STRATA_LIBRARY_USE_CONFIGURATION:-debug}"
prompt="The capital of France is"
max_tokens=12

if [ ! -f "$model" ]; then
    echo "check-library-use: no model at $model (scripts/fetch-models.sh downloads it)" >&2
    exit 2
fi

swift build --package-path "$example" -c "$configuration" --product LibraryUse
swift build --package-path "$example" -c "$configuration" --product strata
bin="$(swift build --package-path "$example" -c "$configuration" --show-bin-path)"

library_text="$("$bin/LibraryUse" "$model" "$prompt" "$max_tokens")"
cli_text="$("$bin/strata" generate --model "$model" --prompt "$prompt" --temperature 0 --max-tokens "$max_tokens" 2>/dev/null)"

if [ -z "$library_text" ] || [ "$library_text" != "$cli_text" ]; then
    echo "check-library-use: the library and the CLI disagree" >&2
    echo "  library: '$library_text'" >&2
    echo "  strata:  '$cli_text'" >&2
    exit 1
fi
echo "check-library-use: ok, both generated '$library_text'"
