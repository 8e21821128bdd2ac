#!/usr/bin/env bash
# Installs the Python packages the tests run, each environment with every version pinned:
#
# - $STRATA_VENV (default ~/.cache/strata/venv): the official `openai` client that the server
#   tests drive `strata serve` with. Only wheels, no torch.
# - $STRATA_REFERENCE_VENV (default ~/.cache/strata/reference-venv): the independent engines
#   the export tests check written models with: transformers (its GGUF loader, float32) on the
#   CPU build of torch, and the `gguf` package. torch is installed from the CPU wheel on disk,
#   $STRATA_TORCH_WHEEL (default /opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl),
#   never from PyPI, whose torch pulls CUDA. It needs Python 3.11 (the wheel's ABI): $PYTHON311,
#   else `python3.11` on the PATH.
#
# Idempotent: an environment whose stamp matches its pins and that imports its packages is left
# alone, so a second run takes a second or two.
#
#   scripts/fetch-python.sh
#
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

# The client environment: openai for the server tests.
install_client() {
  local stamp="$venv_dir/.strata-requirements"
  if [ -x "$venv_dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(requirements)" ] \
      && "$venv_dir/bin/python" -c 'import openai' 2>/dev/null; then
    echo "python: openai present in $venv_dir"; return
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
}

reference_dir="${STRATA_REFERENCE_VENV:-$HOME/.cache/strata/reference-venv}"
torch_wheel="${STRATA_TORCH_WHEEL:-/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl}"
# The CPU wheel's sha256: a different file under the same name is refused, not installed.
torch_sha256="6746dbcbeb526eb61330b76b41ff1b4eb848951103a892eeb080dfa2b264667b"

# What the reference environment holds besides torch, as `pip freeze` lists it after installing
# the torch wheel, transformers==5.25.0, gguf==0.19.0 and accelerate==1.16.0 (transformers' GGUF
# loader requires it). setuptools, which freeze hides, is torch's requirement.
reference_requirements() {
  cat <<'PINS'
transformers==5.25.0
gguf==0.19.0
accelerate==1.16.0
numpy==2.4.6
setuptools==84.2.1
annotated-doc==0.0.7
annotated-types==0.8.0
anyio==4.16.0
certifi==2026.10.19.post1
charset-normalizer==3.5.3
click==8.5.1
filelock==4.3.2
fsspec==2026.9.0
h11==0.16.0
hf-xet==1.8.0
httpcore2==2.17.0
httpx2==2.17.0
huggingface_hub==2.4.0
idna==3.21
Jinja2==3.1.6
kernels==0.19.1
markdown-it-py==4.3.0
MarkupSafe==3.0.4
mdurl==0.1.2
mpmath==1.3.0
networkx==3.6.1
packaging==26.4
psutil==7.2.2
pydantic==2.14.4
pydantic_core==2.50.5
Pygments==2.21.0
PyYAML==6.0.4
regex==2026.12.2
requests==2.34.2
rich==15.0.0
safetensors==0.8.0
shellingham==1.5.4
sympy==1.14.0
tokenizers==0.23.3
tomlkit==0.15.3
tqdm==4.70.1
truststore==0.10.5
typer==0.29.2
typing-inspection==0.4.5
typing_extensions==4.16.0
urllib3==2.8.0
PINS
}

# The reference environment: torch (CPU), transformers and gguf for the export tests.
install_reference() {
  local stamp="$reference_dir/.strata-requirements"
  local wanted
  wanted="$(reference_requirements; echo "torch @ $(basename "$torch_wheel") sha256=$torch_sha256")"
  local check='import torch, transformers, gguf; assert torch.__version__.endswith("+cpu"), torch.__version__'
  if [ -x "$reference_dir/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] \
      && "$reference_dir/bin/python" -c "$check" 2>/dev/null; then
    echo "python: torch, transformers and gguf present in $reference_dir"; return
  fi
  local python311="${PYTHON311:-}"
  if [ -z "$python311" ]; then
    python311="$(command -v python3.11 || true)"
  fi
  [ -n "$python311" ] && "$python311" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
    || die "the reference environment needs Python 3.11 (the torch wheel is built for cp311): none found as " \
           "\$PYTHON311 or python3.11 on the PATH; install it (e.g. pyenv install 3.11) or set PYTHON311"
  [ -f "$torch_wheel" ] || die "the CPU torch wheel $torch_wheel is missing; download it with " \
      "\`pip download torch==2.13.0+cpu --no-deps --index-url https://download.pytorch.org/whl/cpu\` " \
      "and set STRATA_TORCH_WHEEL to its path (PyPI's torch would pull CUDA)"
  local found
  found="$(sha256sum "$torch_wheel" | cut -d' ' -f1)"
  [ "$found" = "$torch_sha256" ] || die "$torch_wheel: expected sha256 $torch_sha256, found $found"
  if [ ! -x "$reference_dir/bin/python" ]; then
    echo "python: creating a Python 3.11 virtual environment at $reference_dir..." >&2
    mkdir -p "$(dirname "$reference_dir")"
    "$python311" -m venv "$reference_dir" \
      || die "cannot create a virtual environment at $reference_dir (is the venv module installed?)"
  fi
  echo "python: installing torch from $torch_wheel and transformers, gguf from PyPI into $reference_dir..." >&2
  rm -f "$stamp"
  "$reference_dir/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
      "$torch_wheel" -r <(reference_requirements) || die "pip install failed in $reference_dir"
  "$reference_dir/bin/python" -c "$check" || die "torch, transformers or gguf does not import in $reference_dir"
  echo "$wanted" >"$stamp"
  echo "python: $("$reference_dir/bin/python" -c 'import torch, transformers, gguf; print("torch", torch.__version__, "transformers", transformers.__version__)') installed in $reference_dir"
}

install_client
install_reference
