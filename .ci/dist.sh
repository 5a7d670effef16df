#!/usr/bin/env bash
# CI step: build the sdist (build isolation: Cython generates the C it ships) and a wheel from it,
# then list both with sizes, so what users download is on record.
# Usage (repository root): .ci/dist.sh [OUTDIR]   (default dist/)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
rm -rf "$out"
python -m build --sdist --outdir "$out" . > "$out.sdist.log" 2>&1 || { tail -50 "$out.sdist.log"; exit 1; }
sdist=$(ls "$out"/fastconv-*.tar.gz)
python -m pip wheel -q --no-deps -w "$out" "$sdist"
wheel=$(ls "$out"/fastconv-*.whl)
python - "$sdist" "$wheel" <<'PY'
import os, sys, tarfile, zipfile
sdist, wheel = sys.argv[1:]
with tarfile.open(sdist) as t:
    members = [(m.name, m.size) for m in t.getmembers() if m.isfile()]
with zipfile.ZipFile(wheel) as z:
    files = [(i.filename, i.file_size) for i in z.infolist()]
for path, rows in ((sdist, members), (wheel, files)):
    print(f"{os.path.basename(path)}: {os.path.getsize(path) / 1e6:.2f} MB, {len(rows)} files, "
          f"{sum(s for _, s in rows) / 1e6:.2f} MB unpacked")
    for name, size in rows:
        print(f"  {size:>10}  {name}")
bad = [n for n, _ in files if n.endswith((".c", ".pyx", ".pxd", ".h"))]
if bad:
    sys.exit(f"the wheel carries build sources: {bad}")
PY
