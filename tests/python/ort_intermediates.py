"""Statistics of intermediate values of a model in onnxruntime (CPU) over an .npz dataset.

    ort_intermediates.py MODEL.onnx DATA.npz --names A,B,... [--input-key input]
                         [--batch-size N] [--channel-axis AXIS]

Adds the named values (node outputs of the main graph) as extra graph outputs (untyped:
onnxruntime infers their types), feeds DATA[input-key] (cast to the input's dtype) to the
model's first input, in batches of --batch-size (default: the whole set), and reports for
each name, over all samples: shape (of the whole set, batches concatenated on axis 0),
count, min, max, mean_abs (mean of |x|), all in float64; with --channel-axis also per
channel: channel_min, channel_max, channel_mean_abs (lists, axis counted in one batch's
tensor, e.g. 1 for NCHW). NaN/inf are excluded from every statistic and counted in
"nonfinite".
"""
import argparse

import numpy as np
import onnx

from _common import ort_dtype, run


def session_with_outputs(path, names):
    import onnxruntime as ort

    model = onnx.load(path)
    existing = {o.name for o in model.graph.output}
    for name in names:
        if name not in existing:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def stats(x, channel_axis):
    x64 = x.astype(np.float64)
    finite = np.isfinite(x64)
    values = x64[finite]
    out = {"shape": list(x.shape), "count": int(values.size), "nonfinite": int((~finite).sum()),
           "min": float(values.min()), "max": float(values.max()),
           "mean_abs": float(np.abs(values).mean())}
    if channel_axis is not None:
        moved = np.moveaxis(np.where(finite, x64, np.nan), channel_axis, 0)
        flat = moved.reshape(moved.shape[0], -1)
        out["channel_min"] = np.nanmin(flat, axis=1).tolist()
        out["channel_max"] = np.nanmax(flat, axis=1).tolist()
        out["channel_mean_abs"] = np.nanmean(np.abs(flat), axis=1).tolist()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("data")
    p.add_argument("--names", required=True)
    p.add_argument("--input-key", default="input")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--channel-axis", type=int)
    args = p.parse_args()

    names = [n for n in args.names.split(",") if n]
    sess = session_with_outputs(args.model, names)
    inp = sess.get_inputs()[0]
    x = np.load(args.data)[args.input_key].astype(ort_dtype(inp.type), copy=False)
    batch = args.batch_size or len(x)
    parts = {n: [] for n in names}
    for start in range(0, len(x), batch):
        results = sess.run(names, {inp.name: x[start:start + batch]})
        for n, r in zip(names, results):
            parts[n].append(np.asarray(r))
    values = {n: stats(np.concatenate(parts[n], axis=0), args.channel_axis) for n in names}
    return {"model": args.model, "data": args.data, "samples": len(x), "values": values}


if __name__ == "__main__":
    run(main)
