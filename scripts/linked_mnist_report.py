#!/usr/bin/env python3
"""Tables of the linked-MNIST experiment (scripts/linked_mnist.sh) as results.md.

Reads, in the experiment folder: the dictionaries (single.h5, linked.h5, ordinal.h5),
the MNIST-only codes (codes-<run>-{train,test}.h5), the logistic-regression models
(model-<run>.h5, attribute test_accuracy), the cross-modal reconstructions
(printed-from-mnist-<run>.h5) and data/{mnist,printed}.h5. Computes:
  * cross-modal accuracy: each rebuilt printed digit is given the label of the nearest
    printed template (cosine), compared with the true label;
  * for ordinal-linked codes, the share of each test code's l1 mass that lies in its own
    class's block of atoms [c K / C, (c + 1) K / C).
"""
import argparse
import os
import subprocess
import sys

import h5py
import numpy as np

RUNS = ("single", "linked", "ordinal")


def read_codes(path):
    with h5py.File(path, "r") as f:
        g = f["codes"]
        n, k = (int(v) for v in g.attrs["shape"])
        data, indices, indptr = g["data"][...], g["indices"][...], g["indptr"][...]
    dense = np.zeros((n, k))
    rows = np.repeat(np.arange(n), np.diff(indptr))
    np.add.at(dense, (rows, indices), data)
    return dense


def nearest_template_accuracy(rebuilt, templates, labels):
    t = templates / np.linalg.norm(templates, axis=1, keepdims=True)
    x = rebuilt / np.maximum(np.linalg.norm(rebuilt, axis=1, keepdims=True), 1e-12)
    return float(np.mean(np.argmax(x @ t.T, axis=1) == labels))


def own_block_mass(codes, labels, classes):
    k = codes.shape[1]
    mass = np.abs(codes)
    blocks = np.stack([mass[:, c * k // classes:(c + 1) * k // classes].sum(1)
                       for c in range(classes)], axis=1)
    own = blocks[np.arange(len(labels)), labels] / np.maximum(mass.sum(1), 1e-300)
    return own, float(np.mean(np.argmax(blocks, axis=1) == labels))


def attr(path, name):
    with h5py.File(path, "r") as f:
        value = f.attrs.get(name)
    return None if value is None else float(np.asarray(value).ravel()[0])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", help="the experiment folder")
    p.add_argument("--svm", action="store_true", help="also linear and RBF SVMs (scikit-learn)")
    p.add_argument("--seconds", type=float, default=None, help="wall time of the experiment")
    a = p.parse_args()
    os.chdir(a.folder)
    with h5py.File("data/mnist.h5", "r") as f:
        y_test = f["y_test"][...].astype(int)
        n_train, n_test = f["X"].shape[0], f["X_test"].shape[0]
    with h5py.File("data/printed.h5", "r") as f:
        templates = f["templates"][...]
    classes = int(y_test.max()) + 1

    L = ["# Linked dictionaries on MNIST", ""]
    with h5py.File("linked.h5", "r") as f:
        at = dict(f.attrs)
    L.append("%d training / %d test digits; K = %s atoms, coder %s, lambda %s, update %s, "
             "%s epochs, batch %s, normalize %s, %s ranks (configs/linked-mnist.yaml)%s." % (
                 n_train, n_test, at.get("atoms"), at.get("coder"), at.get("lambda"),
                 at.get("update"), at.get("epochs"), at.get("batch-size"), at.get("normalize"),
                 at.get("ranks"),
                 "" if a.seconds is None else "; whole experiment %.0f s" % a.seconds))
    L.append("")
    L.append("## Classification of the test digits (multinomial logistic regression, "
             "`dictlearn classify`)")
    L.append("")
    L.append("Codes come from the MNIST modality alone (`dictlearn encode --modalities 0`), "
             "for training and test digits alike.")
    L.append("")
    L.append("| features | dimension | mean nonzeros | train objective (last epoch) | "
             "test accuracy |")
    L.append("|---|---|---|---|---|")
    L.append("| raw pixels | 784 | - | - | %.4f |" % attr("model-pixels.h5", "test_accuracy"))
    accuracy = {}
    for run in RUNS:
        codes = read_codes("codes-%s-test.h5" % run)
        with h5py.File(run + ".h5", "r") as f:
            objective = f["history"]["objective"][-1]
        accuracy[run] = attr("model-%s.h5" % run, "test_accuracy")
        L.append("| %s dictionary codes | %d | %.2f | %.5f | %.4f |" % (
            run, codes.shape[1], np.mean(np.count_nonzero(codes, axis=1)), objective,
            accuracy[run]))
    L.append("")
    L.append("Paper (Barari & Kim, Table I, logistic regression): raw pixels 0.9167, linked "
             "codes 0.9633 (their split and settings).")
    L.append("")
    if a.svm:
        features = ["pixels=data/mnist.h5:/X,data/mnist.h5:/X_test"] + [
            "%s=codes-%s-train.h5,codes-%s-test.h5" % (run, run, run) for run in RUNS]
        command = [sys.executable, os.path.join(os.path.dirname(__file__), "svm_table.py"),
                   "--labels", "data/mnist.h5:/y,data/mnist.h5:/y_test", "-o", "svm.md",
                   "--force"]
        for f in features:
            command += ["--features", f]
        subprocess.run(command, check=True)
        L.append("## SVMs (scikit-learn; scripts/svm_table.py)")
        L.append("")
        L += [line for line in open("svm.md").read().splitlines() if line.startswith("|")]
        L.append("")

    L.append("## Cross-modal reconstruction")
    L.append("")
    L.append("The printed digit rebuilt from the MNIST-only code (`dictlearn reconstruct "
             "--modality 1`), labelled by the nearest of the 10 printed templates (cosine).")
    L.append("")
    L.append("| dictionary | nearest-template accuracy | figure |")
    L.append("|---|---|---|")
    for run in ("linked", "ordinal"):
        with h5py.File("printed-from-mnist-%s.h5" % run, "r") as f:
            rebuilt = f["X"][...]
        L.append("| %s | %.4f | cross-modal-%s.png |" % (
            run, nearest_template_accuracy(rebuilt, templates, y_test), run))
    L.append("")
    L.append("Figures: per column one test digit; rows: MNIST input, its reconstruction, the "
             "printed digit of its label, the printed digit rebuilt from the MNIST code.")
    L.append("")
    L.append("## Ordinal-linked codes: l1 mass in the class's block")
    L.append("")
    own, block_accuracy = own_block_mass(read_codes("codes-ordinal-test.h5"), y_test, classes)
    single_own, _ = own_block_mass(read_codes("codes-linked-test.h5"), y_test, classes)
    L.append("| codes | mean share in own block | median | codes with > 50 % there | "
             "class = heaviest block |")
    L.append("|---|---|---|---|---|")
    L.append("| ordinal-linked | %.3f | %.3f | %.3f | %.4f |" % (
        own.mean(), np.median(own), np.mean(own > 0.5), block_accuracy))
    L.append("| linked (no drivers, for reference) | %.3f | %.3f | %.3f | - |" % (
        single_own.mean(), np.median(single_own), np.mean(single_own > 0.5)))
    L.append("")
    L.append("Chance level for the share: 1/%d = %.3f." % (classes, 1.0 / classes))
    L.append("")
    L.append("## Pictures")
    L.append("")
    for name in ("atoms-single.png", "atoms-linked.png", "atoms-ordinal.png",
                 "cross-modal-linked.png", "cross-modal-ordinal.png",
                 "data/printed-templates.png"):
        L.append("- `%s`" % name)
    open("results.md", "w").write("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
