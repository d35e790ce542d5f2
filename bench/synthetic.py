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


# Words for `text_lines`: receipt/invoice vocabulary, the kind of line PP-OCR reads.
WORDS = ("invoice total amount date number customer address phone email order item price "
         "quantity tax subtotal paid due balance account bank transfer reference payment "
         "receipt store street city").split()
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu")
FONTS = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf")


def _font(k, size):
    from PIL import ImageFont
    for d in FONT_DIRS:
        path = f"{d}/{FONTS[k % len(FONTS)]}"
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default(size)  # Pillow's bundled font when DejaVu is missing


def text_lines(n, h=48, w=320, seed=0):
    """Rendered text lines (1-3 words, sometimes a number; four fonts, sizes 22-33 px, grey
    levels 0-80 on white), normalised like `text_images`. Unlike glyph blocks, the PP-OCR
    recogniser reads these with confident outputs (mean top-1 probability ~0.95), as it does
    real crops, so agreement numbers are not dominated by near-ties. Needs Pillow."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    out = np.empty((n, h, w, 3), np.float32)
    for k in range(n):
        img = Image.new("RGB", (w, h), (255, 255, 255))
        size = int(rng.integers(22, 34))
        text = " ".join(rng.choice(WORDS) for _ in range(int(rng.integers(1, 4))))
        if rng.random() < 0.5:
            text += " " + str(int(rng.integers(1, 99999)))
        ink = int(rng.integers(0, 80))
        ImageDraw.Draw(img).text((int(rng.integers(2, 12)), (h - size) // 2 - 2), text,
                                 fill=(ink, ink, ink), font=_font(k, size))
        out[k] = np.asarray(img, np.float32) / 255.0
    return ((out - MEAN) / STD).transpose(0, 3, 1, 2).copy()
