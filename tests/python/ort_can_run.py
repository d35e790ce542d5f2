"""Does onnxruntime (CPU) run each model on the given inputs? Many models in one process.

    ort_can_run.py MODEL.onnx INPUTS.npz [MODEL.onnx INPUTS.npz ...]

Each npz holds one array per model input, keyed by input name (as `whittle run
--save-inputs` writes them), cast to the input's dtype. Prints {"results": {MODEL: {"ok":
bool, "error": str|null}}}; exits 0 whatever the models do (a model that fails is data,
not a script failure).
"""
import sys

import numpy as np

from _common import ort_dtype, run, session


def try_model(model, inputs):
    try:
        sess = session(model)
        data = np.load(inputs)
        feeds = {i.name: np.asarray(data[i.name]).astype(ort_dtype(i.type), copy=False)
                 for i in sess.get_inputs()}
        sess.run(None, feeds)
        return {"ok": True, "error": None}
    except Exception as exc:  # the failure is the answer
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        raise ValueError("expected pairs: MODEL.onnx INPUTS.npz ...")
    pairs = zip(args[0::2], args[1::2])
    return {"results": {model: try_model(model, inputs) for model, inputs in pairs}}


if __name__ == "__main__":
    run(main)
