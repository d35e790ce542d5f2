"""Run many (reference, candidate) model pairs in onnxruntime and compare their outputs.

    check_pairs.py SPEC.json

SPEC.json is a list of objects:
  {"reference": PATH, "candidate": PATH, "shape": ["NAME=DIMS", ...], "values": {"NAME": N},
   "data_dir": PATH or null, "atol": X or null}

One process for the whole list (the corpus has hundreds of pairs). Inputs are seeded as in
tests/python/ort_run_compare.py (seed 7), with `values` filling named integer scalars (e.g.
a sample rate) and `data_dir` (an onnx backend-test `test_data_set_*` folder) supplying
inputs by position. Sessions run with graph optimizations disabled, so outputs are compared
exactly unless `atol` is given.

Per pair, "status" is one of:
  match        the candidate's outputs equal the reference's (or the data set's, when the
               reference itself does not run: rtol 1e-3, atol 1e-5 as the backend tests)
  mismatch     they differ                       (a failure)
  candidate_fails  the reference runs, the candidate does not   (a failure)
  reference_fails  neither runs and there is no data set to compare with (reported, not failed)
Prints {"ok": all pairs are match or reference_fails, "results": [...]}.
"""
import json
import sys
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
from _common import run, session  # noqa: E402
from ort_run_compare import build_feeds, compare  # noqa: E402


def load_data(data_dir, sess):
    import onnx
    from onnx import numpy_helper

    def read(kind):
        arrays = []
        for p in sorted(Path(data_dir).glob(f"{kind}_*.pb"), key=lambda p: int(p.stem.split("_")[1])):
            t = onnx.TensorProto()
            t.ParseFromString(p.read_bytes())
            arrays.append(numpy_helper.to_array(t))
        return arrays

    inputs = read("input")
    names = [i.name for i in sess.get_inputs()]
    return dict(zip(names, inputs)), read("output")


def try_session(path):
    try:
        return session(path, "disable"), None
    except Exception as exc:  # a model onnxruntime cannot load
        return None, f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def try_run(sess, feeds):
    try:
        names = [i.name for i in sess.get_inputs()]
        return sess.run(None, {n: feeds[n] for n in names}), None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def check(pair):
    ref, ref_err = try_session(pair["reference"])
    cand, cand_err = try_session(pair["candidate"])
    out = {"reference": pair["reference"], "candidate": pair["candidate"]}
    expected = None
    feeder = ref or cand
    if feeder is None:
        return {**out, "status": "reference_fails", "detail": ref_err}
    if pair.get("data_dir"):
        feeds, expected = load_data(pair["data_dir"], feeder)
    else:
        args = types.SimpleNamespace(inputs=None, npz=None, npz_key_map=[], shape=pair.get("shape", []), seed=7, int_high=2)
        feeds = build_feeds(feeder, args)
    for name, value in (pair.get("values") or {}).items():
        if name in feeds:
            feeds[name] = np.asarray(value, dtype=feeds[name].dtype).reshape(feeds[name].shape)
    ref_out = None
    if ref is not None:
        ref_out, ref_err = try_run(ref, feeds)
    if cand is None:
        status = "candidate_fails" if ref_out is not None else "reference_fails"
        return {**out, "status": status, "detail": cand_err if ref_out is not None else ref_err}
    cand_out, cand_err = try_run(cand, feeds)
    if cand_out is None:
        status = "candidate_fails" if ref_out is not None or expected else "reference_fails"
        return {**out, "status": status, "detail": cand_err if status == "candidate_fails" else ref_err}
    if ref_out is not None:
        atol = pair.get("atol")
        diffs = [compare(np.asarray(a), np.asarray(b)) for a, b in zip(ref_out, cand_out)]
        same = len(ref_out) == len(cand_out) and all(
            ident if atol is None else (d is not None and d <= atol) for ident, d in diffs)
        worst = max((d for _, d in diffs if d is not None), default=0.0)
        return {**out, "status": "match" if same else "mismatch", "against": "reference", "max_abs_diff": worst}
    if expected:
        same = len(expected) == len(cand_out) and all(
            np.asarray(a).shape == np.asarray(b).shape and np.allclose(a, b, rtol=1e-3, atol=1e-5, equal_nan=True)
            for a, b in zip(expected, cand_out))
        return {**out, "status": "match" if same else "mismatch", "against": "data set", "reference_error": ref_err}
    return {**out, "status": "reference_fails", "detail": ref_err}


def main():
    pairs = json.loads(Path(sys.argv[1]).read_text())
    results = [check(p) for p in pairs]
    ok = all(r["status"] in ("match", "reference_fails") for r in results)
    bad = [r for r in results if r["status"] not in ("match", "reference_fails")]
    result = {"ok": ok, "results": results}
    if bad:
        result["error"] = f"{len(bad)} pair(s) differ or fail: " + ", ".join(r["candidate"] for r in bad[:5])
    return result


if __name__ == "__main__":
    run(main)
