#!/usr/bin/env python3
"""Image denoising with learned dictionaries (Elad & Aharon 2006), dictlearn against
scikit-learn's recipe on the same patches.

A grey picture (default: python3-skimage's `camera`) in [0, 1] gets Gaussian noise
(sigma = 20/255 by default). All overlapping 8x8 patches of the noisy picture are taken,
their means removed; dictionaries are learned on a random subset of them (dictlearn:
online, MOD and K-SVD; scikit-learn: MiniBatchDictionaryLearning); every patch is then
coded by OMP until ||r||^2 <= d (C sigma)^2 (C = 1.15, the K-SVD paper's choice), rebuilt,
its mean added back, and the overlapping patches are averaged. Reports PSNR against the
clean picture and writes a PNG: clean | noisy | denoised by each method.

Usage: denoise_image.py --out DIR [--image camera|PATH.png] [--sigma 20] [--atoms 256]
       [--train-patches 40000] [--methods online,mod,ksvd,sklearn] [--ranks 2]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import h5py
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_image(name):
    if os.path.exists(name):
        from PIL import Image
        return np.asarray(Image.open(name).convert("L"), dtype=np.float64) / 255.0
    from skimage import data
    image = getattr(data, name)()
    if image.ndim == 3:
        image = image[..., :3] @ np.array([0.2125, 0.7154, 0.0721])
    image = image.astype(np.float64)
    return image / 255.0 if image.max() > 1.0 else image


def psnr(clean, other):
    return 10 * np.log10(1.0 / np.mean((clean - other) ** 2))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--image", default="camera", help="skimage.data name or a PNG path")
    p.add_argument("--sigma", type=float, default=20.0, help="noise sigma in 0..255 units")
    p.add_argument("--patch", type=int, default=8)
    p.add_argument("--atoms", type=int, default=256)
    p.add_argument("--train-patches", type=int, default=40000)
    p.add_argument("--epochs", type=int, default=5, help="online / MOD epochs")
    p.add_argument("--ksvd-epochs", type=int, default=10)
    p.add_argument("--methods", default="online,mod,ksvd,sklearn")
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dictlearn", default=os.path.join(REPO, "build", "dictlearn"))
    a = p.parse_args()
    from sklearn.feature_extraction.image import extract_patches_2d, reconstruct_from_patches_2d

    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    clean = load_image(a.image)
    sigma = a.sigma / 255.0
    noisy = clean + sigma * rng.standard_normal(clean.shape)
    patches = extract_patches_2d(noisy, (a.patch, a.patch)).reshape(-1, a.patch * a.patch)
    means = patches.mean(axis=1, keepdims=True)
    centred = patches - means
    subset = centred[rng.choice(len(centred), min(a.train_patches, len(centred)), replace=False)]
    data = os.path.join(a.out, "patches.h5")
    with h5py.File(data, "w") as f:
        f["X"] = centred
        f["X_train"] = subset
        f.attrs["image"] = a.image
        f.attrs["sigma"] = a.sigma
    d = a.patch * a.patch
    tolerance = d * (1.15 * sigma) ** 2
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    mpi = ["mpirun", "-n", str(a.ranks), "--oversubscribe", a.dictlearn]

    def dl(*args):
        subprocess.run(mpi + [str(x) for x in args], check=True, env=env,
                       stdout=subprocess.DEVNULL)

    results, pictures = [], [("clean", clean), ("noisy %.2f dB" % psnr(clean, noisy), noisy)]
    common = ["--input", data + ":/X_train", "--atoms", a.atoms, "--threads", 1, "--seed", a.seed]
    for method in [m for m in a.methods.split(",") if m]:
        start = time.time()
        dictionary = os.path.join(a.out, "dictionary-%s.h5" % method)
        if method == "online":
            dl("train", *common, "--lambda", 0.1, "--epochs", a.epochs, "--output", dictionary)
        elif method == "mod":
            dl("train", *common, "--update", "mod", "--coder", "omp", "--nonzeros", 5,
               "--epochs", a.epochs, "--batch-size", 1024, "--output", dictionary)
        elif method == "ksvd":
            dl("train", *common, "--update", "ksvd", "--coder", "omp", "--nonzeros", 5,
               "--epochs", a.ksvd_epochs, "--output", dictionary)
        elif method == "sklearn":
            from sklearn.decomposition import MiniBatchDictionaryLearning
            learner = MiniBatchDictionaryLearning(n_components=a.atoms, alpha=0.1,
                                                  batch_size=256, max_iter=a.epochs,
                                                  random_state=a.seed)
            learner.fit(subset)
            with h5py.File(dictionary, "w") as f:
                f["dictionary"] = learner.components_
        else:
            sys.exit("denoise_image: unknown method %r" % method)
        train_seconds = time.time() - start
        if method == "sklearn":  # scikit-learn's own OMP, same stopping rule
            # (sparse_encode(algorithm='omp') ignores alpha as a tolerance in scikit-learn
            # 1.2 and keeps n_features / 10 atoms, which fits the noise: use the Gram form.)
            from sklearn.linear_model import orthogonal_mp_gram
            atoms = learner.components_
            codes = orthogonal_mp_gram(atoms @ atoms.T, atoms @ centred.T, tol=tolerance,
                                       norms_squared=(centred ** 2).sum(axis=1)).T
            rebuilt = codes @ atoms
        else:
            codes_file = os.path.join(a.out, "codes-%s.h5" % method)
            rebuilt_file = os.path.join(a.out, "rebuilt-%s.h5" % method)
            dl("encode", "--dictionary", dictionary, "--input", data + ":/X", "--coder", "omp",
               "--tolerance", tolerance, "--threads", 1, "--output", codes_file)
            dl("reconstruct", "--dictionary", dictionary, "--codes", codes_file, "--modality", 0,
               "--output", rebuilt_file)
            with h5py.File(rebuilt_file) as f:
                rebuilt = f["X"][...]
        image = reconstruct_from_patches_2d((rebuilt + means).reshape(-1, a.patch, a.patch),
                                            clean.shape)
        value = psnr(clean, image)
        results.append(dict(method=method, psnr=value, seconds=time.time() - start,
                            train_seconds=train_seconds))
        pictures.append(("%s %.2f dB" % (method, value), image))
        print("%-8s PSNR %.2f dB (train %.1f s, total %.1f s)" % (
            method, value, train_seconds, time.time() - start), flush=True)

    from PIL import Image, ImageDraw
    h, w = clean.shape
    canvas = Image.new("L", (len(pictures) * (w + 4), h + 18), 255)
    draw = ImageDraw.Draw(canvas)
    for i, (label, picture) in enumerate(pictures):
        tile = Image.fromarray((np.clip(picture, 0, 1) * 255).round().astype(np.uint8))
        canvas.paste(tile, (i * (w + 4), 18))
        draw.text((i * (w + 4) + 4, 3), label, fill=0)
    png = os.path.join(a.out, "denoising.png")
    canvas.save(png)
    table = ["| method | PSNR dB | seconds (train) | seconds (all) |", "|---|---|---|---|",
             "| noisy input | %.2f | - | - |" % psnr(clean, noisy)]
    table += ["| %s | %.2f | %.1f | %.1f |" % (r["method"], r["psnr"], r["train_seconds"],
                                               r["seconds"]) for r in results]
    header = ("Denoising `%s` (%dx%d), sigma %g/255, %dx%d patches, K = %d, %d training "
              "patches, OMP to ||r||^2 <= d (1.15 sigma)^2, %d ranks." % (
                  a.image, h, w, a.sigma, a.patch, a.patch, a.atoms, len(subset), a.ranks))
    open(os.path.join(a.out, "results.md"), "w").write(
        header + "\n\n" + "\n".join(table) + "\n\n![denoising](denoising.png)\n")
    json.dump(results, open(os.path.join(a.out, "results.json"), "w"), indent=1)
    print(header)
    print("\n".join(table))
    print("wrote %s" % png)


if __name__ == "__main__":
    main()
