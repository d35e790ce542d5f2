"""Shared plumbing for the helper scripts the Rust tests run as subprocesses.

Contract of every script: exactly one JSON object on stdout; exit 0 on success; exit 1 on
failure with a one-line message on stderr (and "ok": false plus "error" in the JSON).
Set WHITTLE_PY_TRACEBACK=1 to also get the Python traceback on stderr.
"""
import json
import os
import sys
import traceback

import numpy as np

# onnxruntime type strings → numpy dtypes (bfloat16 / float8 come from ml_dtypes, an onnx dep).
ORT_TO_NUMPY = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int8)": np.int8, "tensor(int16)": np.int16, "tensor(int32)": np.int32,
    "tensor(int64)": np.int64, "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32, "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_,
    "tensor(string)": np.str_,
}


def ort_dtype(type_string):
    if type_string in ORT_TO_NUMPY:
        return np.dtype(ORT_TO_NUMPY[type_string])
    if type_string == "tensor(bfloat16)":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    raise ValueError(f"unsupported input type {type_string}")


def session(path, opt_level="all"):
    """A CPU onnxruntime session with one intra-op thread (the test machine has 2 cores)."""
    import onnxruntime as ort

    levels = {"disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
              "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = levels[opt_level]
    options.log_severity_level = 4  # failures surface as exceptions; no duplicate log lines
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def emit(obj):
    print(json.dumps(obj, sort_keys=True))


def run(main):
    """Call main() → dict; print it; exit 0, or 1 if it says ok=False or anything raised."""
    try:
        result = main()
    except SystemExit:
        raise
    except Exception as exc:  # report, never a bare traceback on stdout
        message = f"{type(exc).__name__}: {exc}"
        emit({"ok": False, "error": message})
        if os.environ.get("WHITTLE_PY_TRACEBACK"):
            traceback.print_exc(file=sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)
    result.setdefault("ok", True)
    emit(result)
    if not result["ok"]:
        print(f"error: {result.get('error', 'check failed')}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)
