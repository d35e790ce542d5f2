"""Synthetic inputs that make the corpus models respond like on real data (no downloads).

`text_images`: white pages with rows of dark glyph-like blocks, normalised the way
PaddleOCR feeds its det/rec/cls models ((x - ImageNet mean) / std, NCHW). On uniform noise
the PP-OCR detector outputs ~1e-9 everywhere, so any fidelity metric on it is noise; on
these pages it marks ~15% of the pixels as text, like on a scanned page.
"""
import numpy as np

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def text_images(n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    out = np.ones((n, h, w, 3), np.float32)
    for k in range(n):
        y = int(rng.integers(2, max(3, min(16, h // 4))))
        while y < h - 8:
            lh = int(rng.integers(min(8, h // 2), min(20, h - y)))
            x = int(rng.integers(2, 30))
            while x < w - 10:
                gw = int(rng.integers(3, 10))
                glyph = rng.random((lh, gw)) < 0.55
                out[k, y:y + lh, x:x + gw][glyph] = rng.uniform(0.0, 0.3)
                x += gw + int(rng.integers(1, 4))
                if rng.random() < 0.1:
                    x += int(rng.integers(10, 40))
            y += lh + int(rng.integers(6, 30))
    return ((out - MEAN) / STD).transpose(0, 3, 1, 2).copy()


def uniform(n, shape, seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)
