#!/usr/bin/env python3
"""make_patches.py - natural-image patch data for dictlearn, from scikit-image's
bundled sample pictures (no network needed).

Recipe:
  1. load the pictures named by --images from skimage.data (default: camera,
     astronaut, brick, grass, gravel, moon; colour pictures are converted to
     gray with skimage.color.rgb2gray; pixel values are floats in [0, 1] via
     skimage.img_as_float); pictures that cannot be loaded are skipped with a
     warning;
  2. consider every patch position (all ph x pw windows, stride 1) of every
     picture and draw positions uniformly at random WITHOUT replacement
     (numpy default_rng(--seed)), i.e. the patches come out already shuffled;
  3. flatten each patch row-major (index r*pw + c), subtract its mean and divide
     by its l2 norm; patches whose centred norm is < --min-norm (1e-8,
     near-constant patches) are dropped and counted;
  4. the first --train kept patches go to /X, the next --test to /X_test
     (positions are disjoint, but test patches may overlap train patches
     spatially since they come from the same pictures).

Output HDF5 (contiguous, uncompressed float64, readable by h5py and the C++ code):
  /X            (train, ph*pw)  unit-norm zero-mean patches, one per row
  /X_test       (test,  ph*pw)
  /origin       (train, 3) int32: picture index (into attribute 'images'), row, col
  /origin_test  (test,  3) int32
Root attributes: images, image_shapes, patch_height, patch_width, seed, train,
test, min_norm, candidates_examined, dropped_near_constant, recipe, versions.

Example:
  make_patches.py -o /tmp/dl-data/patches8.h5 --train 100000 --test 5000 --seed 0
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dlcommon  # noqa: E402

DEFAULT_IMAGES = "camera,astronaut,brick,grass,gravel,moon"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__,
        epilog=dlcommon.REQUIREMENTS_NOTE + " Also needs scikit-image "
               "(Debian: apt-get install python3-skimage).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-o", "--output", required=True, help="output HDF5 file")
    p.add_argument("--train", type=int, default=100000, help="training patches (default 100000)")
    p.add_argument("--test", type=int, default=5000, help="test patches (default 5000)")
    p.add_argument("--patch-size", default="8",
                   help="patch size: P for P x P, or HxW (default 8)")
    p.add_argument("--images", default=DEFAULT_IMAGES,
                   help="comma-separated skimage.data picture names (default %s)"
                        % DEFAULT_IMAGES)
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--min-norm", type=float, default=1e-8,
                   help="drop patches whose centred l2 norm is below this (default 1e-8)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    p.add_argument("-q", "--quiet", action="store_true")
    a = p.parse_args(argv)
    try:
        if "x" in a.patch_size.lower():
            ph, pw = (int(v) for v in a.patch_size.lower().split("x"))
        else:
            ph = pw = int(a.patch_size)
    except ValueError:
        p.error("--patch-size must be P or HxW, e.g. 8 or 8x8")
    if ph < 1 or pw < 1 or ph * pw < 2:
        p.error("--patch-size must give at least 2 pixels")
    a.ph, a.pw = ph, pw
    if a.train < 1 or a.test < 0:
        p.error("--train must be >= 1 and --test >= 0")
    a.image_names = [s.strip() for s in a.images.split(",") if s.strip()]
    if not a.image_names:
        p.error("--images is empty")
    return a


def load_images(names):
    """Return [(name, 2-D float64 image in [0, 1])], skipping unavailable ones."""
    import numpy as np
    import skimage
    import skimage.data
    from skimage.color import rgb2gray

    out = []
    for name in names:
        fn = getattr(skimage.data, name, None)
        if fn is None or not callable(fn):
            sys.stderr.write("warning: skimage.data has no picture %r, skipped\n" % name)
            continue
        try:
            img = fn()
        except Exception as exc:  # e.g. a picture that would need a download
            sys.stderr.write("warning: cannot load skimage.data.%s (%s: %s), skipped\n"
                             % (name, exc.__class__.__name__, str(exc).splitlines()[0][:100]))
            continue
        img = np.asarray(img)
        if img.ndim == 3 and img.shape[-1] in (3, 4):
            img = rgb2gray(img[..., :3])
        elif img.ndim != 2:
            sys.stderr.write("warning: skimage.data.%s has shape %s, skipped\n"
                             % (name, img.shape))
            continue
        out.append((name, np.asarray(skimage.img_as_float(img), dtype=np.float64)))
    return out


def main(argv=None):
    a = parse_args(argv)
    dlcommon.require("numpy", "h5py", "sklearn", "skimage")
    import numpy as np
    import h5py
    import skimage
    from numpy.lib.stride_tricks import sliding_window_view

    if os.path.exists(a.output) and not a.force:
        dlcommon.die("%s exists (use --force to overwrite)" % a.output)

    images = load_images(a.image_names)
    images = [(n, im) for n, im in images
              if im.shape[0] >= a.ph and im.shape[1] >= a.pw]
    if not images:
        dlcommon.die("no usable pictures among: %s" % ", ".join(a.image_names))

    views, counts, grid = [], [], []
    for _, im in images:
        v = sliding_window_view(im, (a.ph, a.pw))  # (H-ph+1, W-pw+1, ph, pw), no copy
        views.append(v)
        grid.append(v.shape[1])
        counts.append(v.shape[0] * v.shape[1])
    offsets = np.concatenate([[0], np.cumsum(counts)])
    total = int(offsets[-1])
    need = a.train + a.test
    if need > total:
        dlcommon.die("asked for %d patches but the pictures have only %d positions"
                     % (need, total))

    rng = np.random.default_rng(a.seed)
    order = rng.permutation(total)  # uniform over positions, without replacement
    d = a.ph * a.pw
    kept, kept_origin = [], []
    n_kept = examined = dropped = 0
    while n_kept < need and examined < total:
        chunk = min(total - examined, max(1024, int(1.05 * (need - n_kept)) + 64))
        idx = order[examined:examined + chunk]
        examined += chunk
        img_of = np.searchsorted(offsets, idx, side="right") - 1
        local = idx - offsets[img_of]
        P = np.empty((chunk, d))
        origin = np.empty((chunk, 3), dtype=np.int32)
        for i in np.unique(img_of):
            sel = np.nonzero(img_of == i)[0]
            r, c = np.divmod(local[sel], grid[i])
            P[sel] = views[i][r, c].reshape(len(sel), d)
            origin[sel, 0] = i
            origin[sel, 1] = r
            origin[sel, 2] = c
        P -= P.mean(axis=1, keepdims=True)
        norms = np.sqrt(np.einsum("ij,ij->i", P, P))
        ok = norms >= a.min_norm
        dropped_here = int(np.count_nonzero(~ok))
        P = P[ok] / norms[ok][:, None]
        origin = origin[ok]
        take = min(len(P), need - n_kept)
        # count drops only within the candidates actually consumed
        if take < len(P):
            last = np.nonzero(ok)[0][take - 1]  # position in chunk of last patch used
            dropped_here = int(np.count_nonzero(~ok[:last + 1]))
            examined -= chunk - (last + 1)
        dropped += dropped_here
        kept.append(P[:take])
        kept_origin.append(origin[:take])
        n_kept += take
    if n_kept < need:
        dlcommon.die("only %d non-constant patches available, %d asked" % (n_kept, need))
    P = np.concatenate(kept)
    O = np.concatenate(kept_origin)

    names = [n for n, _ in images]
    attrs = {
        "generator": "make_patches.py",
        "images": names,
        "image_shapes": ";".join("%dx%d" % im.shape for _, im in images),
        "patch_height": a.ph, "patch_width": a.pw, "dim": d,
        "train": a.train, "test": a.test, "seed": a.seed,
        "min_norm": a.min_norm,
        "positions_total": total,
        "candidates_examined": examined,
        "dropped_near_constant": dropped,
        "recipe": "skimage.data pictures -> gray (rgb2gray) -> img_as_float [0,1] -> "
                  "all ph x pw windows, stride 1 -> uniform random positions without "
                  "replacement (numpy default_rng(seed).permutation) -> flatten row-major "
                  "-> subtract patch mean -> drop if l2 norm < min_norm -> divide by l2 "
                  "norm -> first `train` to /X, next `test` to /X_test",
        "numpy_version": np.__version__,
        "skimage_version": skimage.__version__,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.output)), exist_ok=True)
    tmp = a.output + ".tmp"
    with h5py.File(tmp, "w") as f:
        dlcommon.write_attrs(f, attrs)
        dlcommon.write_dataset(f, "X", P[:a.train],
                               {"description": "zero-mean unit-norm patches (N, ph*pw), row-major"})
        dlcommon.write_dataset(f, "origin", O[:a.train],
                               {"columns": "image_index,row,col"})
        if a.test:
            dlcommon.write_dataset(f, "X_test", P[a.train:])
            dlcommon.write_dataset(f, "origin_test", O[a.train:],
                                   {"columns": "image_index,row,col"})
    os.replace(tmp, a.output)

    if not a.quiet:
        per_img = np.bincount(O[:, 0], minlength=len(names))
        dlcommon.print_table("make_patches", [
            ("output", a.output),
            ("images", ", ".join("%s(%d)" % (n, c) for n, c in zip(names, per_img))),
            ("patch", "%dx%d (d=%d)" % (a.ph, a.pw, d)),
            ("X", "%d x %d" % (a.train, d)),
            ("X_test", "%d x %d" % (a.test, d)),
            ("positions total", total),
            ("candidates examined", examined),
            ("dropped near-constant", dropped),
            ("seed", a.seed),
        ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
