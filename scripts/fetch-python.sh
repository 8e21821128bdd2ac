#!/usr/bin/env bash
# Installs the Python packages the server tests drive `strata serve` with (the official `openai`
# client and what it needs, every version pinned) into a virtual environment of their own.
# Idempotent: an environment whose stamp matches the pins and that imports `openai` is left
# alone, so a second run takes well under a second.
#
#   scripts/fetch-python.sh
#
# The environment lands in $STRATA_VENV (default ~/.cache/strata/venv); the tests run
# $STRATA_VENV/bin/python. Only wheels are installed (nothing is compiled) and none of the pins
# pulls torch or CUDA.
set -euo pipefail

venv_dir="${STRATA_VENV:-$HOME/.cache/strata/venv}"
python="${PYTHON:-python3}"

# `openai` and its dependencies as `pip freeze` lists them after `pip install openai==3.63.0`;
# pinning all of them keeps a later release of one from changing what the tests run.
requirements() {
  cat <<'PINS'
openai==3.63.0
annotated-types==0.8.0
anyio==4.16.0
h11==0.16.0
httpcore2==2.17.0
httpx2==2.17.0
idna==3.21
jiter==0.19.0
pydantic==2.14.4
pydantic_core==2.50.5
sniffio==1.3.1
truststore==0.10.5
typing-inspection==0.4.5
typing_extensions==4.16.0
PINS
}

die() { echo "fetch-python: $*" >&2; exit 1; }

stamp="$venv_dir/.strata-requirements"
if [ -x "$venv_dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(requirements)" ] \
    && "$venv_dir/bin/python" -c 'import openai' 2>/dev/null; then
  echo "python: openai present in $venv_dir"; exit 0
fi

if [ ! -x "$venv_dir/bin/python" ]; then
  echo "python: creating a virtual environment at $venv_dir..." >&2
  mkdir -p "$(dirname "$venv_dir")"
  "$python" -m venv "$venv_dir" || die "cannot create a virtual environment at $venv_dir (is the venv module installed?)"
fi
echo "python: installing openai from PyPI into $venv_dir..." >&2
rm -f "$stamp"
"$venv_dir/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
    -r <(requirements) || die "pip install failed in $venv_dir"
"$venv_dir/bin/python" -c 'import openai' || die "openai does not import in $venv_dir"
requirements >"$stamp"
echo "python: openai $("$venv_dir/bin/python" -c 'import openai; print(openai.__version__)') installed in $venv_dir"
