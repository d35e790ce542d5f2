"""Quantize a model with onnxruntime's own tools: the reference whittle is compared with.

    ort_quantize_ref.py MODEL OUT --mode static|dynamic|weight4|fp16
                        [--calib DATA.npz] [--input-key K] [--per-channel]
                        [--calib-method minmax|entropy|percentile] [--block-size B]
                        [--preprocess] [--keep-io-types]

- static: `quantize_static`, QDQ format, uint8 activations, int8 weights (onnxruntime's CPU
  recommendation with VNNI: reduce_range off), calibration over every sample of DATA.npz
  (one sample per run; the npz key is the model input's name, or --input-key);
- dynamic: `quantize_dynamic` with int8 weights (its default, QOperator: MatMulInteger/ConvInteger);
- weight4: `MatMulNBitsQuantizer` (4-bit, symmetric, --block-size, default 32: MatMulNBits);
- fp16: `onnxruntime.transformers.float16.convert_float_to_float16` (keep_io_types as given).

--preprocess runs `quant_pre_process` (shape inference + graph optimization, e.g. BatchNorm
fused into Conv) first, as onnxruntime recommends before static quantization.

JSON: `seconds` (time inside the quantization call(s), imports excluded), `import_seconds`,
`output`, `bytes`.
"""
import argparse
import os
import tempfile
import time

import numpy as np

from _common import run

T0 = time.perf_counter()
import onnx  # noqa: E402
import onnxruntime.quantization as oq  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - T0


class NpzReader(oq.CalibrationDataReader):
    """One calibration sample per run, keyed by the model's input name."""

    def __init__(self, model_path, npz, input_key):
        m = onnx.load(model_path, load_external_data=False)
        inits = {i.name for i in m.graph.initializer}
        self.name = [i.name for i in m.graph.input if i.name not in inits][0]
        data = np.load(npz)
        self.samples = data[input_key or self.name].astype(np.float32)
        self.k = 0

    def get_next(self):
        if self.k >= len(self.samples):
            return None
        self.k += 1
        return {self.name: self.samples[self.k - 1:self.k]}

    def rewind(self):
        self.k = 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--mode", required=True, choices=["static", "dynamic", "weight4", "fp16"])
    p.add_argument("--calib")
    p.add_argument("--input-key")
    p.add_argument("--per-channel", action="store_true")
    p.add_argument("--calib-method", default="minmax", choices=["minmax", "entropy", "percentile"])
    p.add_argument("--block-size", type=int, default=32)
    p.add_argument("--preprocess", action="store_true")
    p.add_argument("--keep-io-types", action="store_true")
    args = p.parse_args()
    start = time.perf_counter()
    src = args.model
    with tempfile.TemporaryDirectory() as tmp:
        if args.preprocess:
            pre = os.path.join(tmp, "pre.onnx")
            oq.shape_inference.quant_pre_process(src, pre, skip_symbolic_shape=True)
            src = pre
        if args.mode == "static":
            if not args.calib:
                raise ValueError("--mode static needs --calib")
            methods = {"minmax": oq.CalibrationMethod.MinMax, "entropy": oq.CalibrationMethod.Entropy,
                       "percentile": oq.CalibrationMethod.Percentile}
            oq.quantize_static(src, args.out, NpzReader(src, args.calib, args.input_key),
                               quant_format=oq.QuantFormat.QDQ, per_channel=args.per_channel,
                               activation_type=oq.QuantType.QUInt8, weight_type=oq.QuantType.QInt8,
                               calibrate_method=methods[args.calib_method])
        elif args.mode == "dynamic":
            oq.quantize_dynamic(src, args.out, per_channel=args.per_channel, weight_type=oq.QuantType.QInt8)
        elif args.mode == "weight4":
            from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
            q = MatMulNBitsQuantizer(onnx.load(src), block_size=args.block_size, is_symmetric=True)
            q.process()
            q.model.save_model_to_file(args.out)
        else:
            from onnxruntime.transformers.float16 import convert_float_to_float16
            m = convert_float_to_float16(onnx.load(src), keep_io_types=args.keep_io_types)
            onnx.save(m, args.out)
    seconds = time.perf_counter() - start
    return {"output": args.out, "seconds": seconds, "import_seconds": IMPORT_SECONDS,
            "bytes": os.path.getsize(args.out), "mode": args.mode}


if __name__ == "__main__":
    run(main)
