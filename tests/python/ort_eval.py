"""Classification accuracy of a model in onnxruntime (CPU) over a labelled .npz set.

    ort_eval.py MODEL.onnx DATA.npz [--input-key input] [--label-key label]
                [--input-name NAME] [--output-name NAME] [--batch-size N]

Feeds DATA[input-key] (cast to the model input's dtype) to the model's first input (or
--input-name), takes the argmax per sample of its first output (flattened past the batch axis) (or --output-name).
The whole set goes in one batch unless --batch-size is given or the model's batch dim is a
fixed 1. Reports accuracy (null when the npz has no label key), correct, count and
"predictions" (argmax per sample, in order).
"""
import argparse

import numpy as np

from _common import ort_dtype, run, session


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("data")
    p.add_argument("--input-key", default="input")
    p.add_argument("--label-key", default="label")
    p.add_argument("--input-name")
    p.add_argument("--output-name")
    p.add_argument("--batch-size", type=int)
    args = p.parse_args()

    sess = session(args.model)
    inp = next(i for i in sess.get_inputs() if args.input_name in (None, i.name))
    output = args.output_name or sess.get_outputs()[0].name
    data = np.load(args.data)
    x = data[args.input_key].astype(ort_dtype(inp.type), copy=False)
    batch = args.batch_size or (1 if inp.shape and inp.shape[0] == 1 else len(x))
    predictions = []
    for start in range(0, len(x), batch):
        logits = sess.run([output], {inp.name: x[start:start + batch]})[0]
        predictions += logits.reshape(len(logits), -1).argmax(axis=-1).tolist()
    result = {"model": args.model, "data": args.data, "input": inp.name, "output": output,
              "count": len(predictions), "predictions": predictions,
              "accuracy": None, "correct": None}
    if args.label_key in data:
        labels = data[args.label_key].astype(np.int64).tolist()
        correct = sum(int(p == t) for p, t in zip(predictions, labels))
        result.update(correct=correct, accuracy=correct / len(labels))
    return result


if __name__ == "__main__":
    run(main)
