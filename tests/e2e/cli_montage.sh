#!/usr/bin/env bash
# `dictlearn montage`: the PNG has the grid's size and each tile holds its atom, scaled to
# 0-255 on the atom's own range; 1 and 2 ranks write the same file; bad shapes and missing
# files are one-line errors that leave no file behind.
source "$(dirname "$0")/common.sh"
cd "$WORK"
"$PYTHON" - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(5)
with h5py.File("dict.h5", "w") as f:
    f["dictionary"] = rng.standard_normal((10, 12))  # K = 10 atoms of 3 x 4 pixels
PY
for ranks in 1 2; do
  run_mpi "$ranks" montage --dictionary dict.h5 --shape 3x4 --columns 4 --padding 1 \
    --output "atoms_$ranks.png" >log.txt 2>&1 || { cat log.txt; fail "montage on $ranks ranks"; }
done
cmp -s atoms_1.png atoms_2.png || fail "1 and 2 ranks wrote different pictures"
"$PYTHON" - <<'PY' || fail "montage content"
import struct, zlib, h5py, numpy as np
data = open("atoms_1.png", "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, header = 8, b"", None
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    assert zlib.crc32(kind + body) == struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
    if kind == b"IHDR": header = struct.unpack(">IIBBBBB", body)
    if kind == b"IDAT": idat += body
    pos += 12 + length
width, height, depth, colour = header[:4]
# 4 columns x 3 rows of 3 x 4 tiles with 1-pixel padding: (4 * 5 + 1) x (3 * 4 + 1)
assert (width, height, depth, colour) == (21, 13, 8, 0), header
raw = zlib.decompress(idat)
stride = width + 1
rows = []
previous = bytearray(width)
for r in range(height):  # undo the PNG filters (none, sub, up, average, paeth)
    f, line = raw[r * stride], bytearray(raw[r * stride + 1:(r + 1) * stride])
    for i in range(width):
        a = line[i - 1] if i else 0
        b = previous[i]
        c = previous[i - 1] if i else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    rows.append(bytes(line)); previous = line
image = np.array([list(r) for r in rows])
D = h5py.File("dict.h5", "r")["dictionary"][()]
for k, atom in enumerate(D):
    top, left = 1 + (k // 4) * 4, 1 + (k % 4) * 5
    tile = image[top:top + 3, left:left + 4]
    expected = np.rint((atom - atom.min()) * 255 / (atom.max() - atom.min())).reshape(3, 4)
    assert np.array_equal(tile, expected), (k, tile, expected)
assert image[0].tolist() == [64] * width  # padding
PY
if run_mpi 1 montage --dictionary dict.h5 --shape 3x5 --output bad.png >log.txt 2>&1; then
  fail "a 3x5 shape for 12 values was accepted"
fi
grep -q "shape 3x5 has 15 pixels; the atoms have 12 values" log.txt || { cat log.txt; fail "shape error message"; }
[ ! -e bad.png ] && [ ! -e bad.png.tmp.png ] || fail "a failed montage left a file"
if run_mpi 2 montage --dictionary missing.h5 --shape 3x4 --output bad.png >log.txt 2>&1; then
  fail "a missing dictionary was accepted"
fi
grep -q "missing.h5" log.txt || { cat log.txt; fail "missing-file error message"; }
finish
