#!/usr/bin/env bash
# Build a wheelhouse: bkdoctor and every dependency as wheels, for an offline install on any CPython >= 3.10
# of this architecture (Linux, glibc >= 2.17: manylinux2014 wheels only, so it also installs on old glibcs):
#
#   packaging/wheelhouse.sh [OUT_DIR]          # default dist/wheelhouse
#   python3 -m pip install --no-index --find-links OUT_DIR bkdoctor      # on the offline machine (in a venv)
#
# Needs PyPI (or the mirror pip is configured for) while building, never on the target.
# Environment:
#   WHEELHOUSE_PYTHONS   CPython versions to fetch binary wheels for (default "3.10 3.11 3.12 3.13 3.14";
#                        the running interpreter's version is always added)
#   WHEELHOUSE_PLATFORM  pip platform tag (default manylinux2014_$(uname -m))
#   PYTHON               interpreter that runs pip (default python3)
#
# bkdoctor itself is built from a clean copy of the work tree (tracked and untracked files, .gitignore
# honoured), so a stale build/ or egg-info in the tree never ends up in the wheel. The wheelhouse is then
# checked by resolving bkdoctor from it alone (--no-index) with the running interpreter.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/dist/wheelhouse}"
PYTHON="${PYTHON:-python3}"
PLATFORM="${WHEELHOUSE_PLATFORM:-manylinux2014_$(uname -m)}"
PYTHONS="${WHEELHOUSE_PYTHONS:-3.10 3.11 3.12 3.13 3.14}"

cur="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "wheelhouse.sh: $PYTHON is Python $cur; bkdoctor needs >= 3.10 (PYTHON=python3.11 $0 ...)." >&2
  echo "  On CentOS 7 (Python 3.6): build the wheelhouse elsewhere, or use the image (packaging/build-image.sh)." >&2
  exit 2
fi
case " $PYTHONS " in *" $cur "*) ;; *) PYTHONS="$PYTHONS $cur" ;; esac

mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

work="$(mktemp -d "${TMPDIR:-/tmp}/bkdoctor-wheelhouse.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# ---- a clean copy of the source tree
src="$work/src"
mkdir -p "$src"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # tracked + untracked-but-not-ignored files that exist (a file deleted in the tree but still tracked is skipped)
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
     | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
     | tar --null -T - -cf -) | tar -C "$src" -xf -
else
  tar -C "$ROOT" --exclude=./.git --exclude=./build --exclude=./dist --exclude='*.egg-info' \
      --exclude='__pycache__' --exclude=./.venv --exclude=./venv -cf - . | tar -C "$src" -xf -
fi

# ---- bkdoctor's own wheel (replaces an older one: pip would pick the highest version in the directory)
rm -f "$OUT"/bkdoctor-*.whl
"$PYTHON" -m pip wheel -q --disable-pip-version-check --no-deps -w "$work/self" "$src"
cp "$work/self"/bkdoctor-*.whl "$OUT/"
wheel="$(ls "$OUT"/bkdoctor-*.whl)"
echo "built $(basename "$wheel")"

# ---- every dependency, as binary wheels for each Python version (in parallel: it is mostly index look-ups)
pids=()
for v in $PYTHONS; do
  mkdir -p "$work/dl-$v"
  "$PYTHON" -m pip download -q --disable-pip-version-check --only-binary=:all: \
      --platform "$PLATFORM" --implementation cp --python-version "$v" \
      --find-links "$OUT" -d "$work/dl-$v" "$wheel" >"$work/dl-$v.log" 2>&1 &
  pids+=("$!")
done
i=0
for v in $PYTHONS; do
  if ! wait "${pids[$i]}"; then
    echo "fetching wheels for CPython $v ($PLATFORM) failed:" >&2
    cat "$work/dl-$v.log" >&2
    exit 1
  fi
  i=$((i + 1))
  find "$work/dl-$v" -name '*.whl' ! -name 'bkdoctor-*' -exec cp -n {} "$OUT/" \;
done
echo "fetched wheels for CPython $PYTHONS ($PLATFORM)"

# ---- check: the running interpreter resolves everything from the wheelhouse alone. A dependency that only
# exists as an sdist would fail the downloads above; pip wheel builds it here instead (pure Python, usually).
if ! PIP_FIND_LINKS='' "$PYTHON" -m pip wheel -q --disable-pip-version-check --no-index --find-links "$OUT" \
       -w "$work/check" "$wheel" >/dev/null 2>&1; then
  echo "some dependencies have no binary wheel: building them with pip wheel"
  "$PYTHON" -m pip wheel -q --disable-pip-version-check --find-links "$OUT" -w "$OUT" "$wheel"
  PIP_FIND_LINKS='' "$PYTHON" -m pip wheel -q --disable-pip-version-check --no-index --find-links "$OUT" \
      -w "$work/check" "$wheel" >/dev/null
fi

n="$(find "$OUT" -maxdepth 1 -name "*.whl" | wc -l)"
size="$(du -sh "$OUT" | cut -f1)"
echo "wheelhouse: $OUT ($n wheels, $size; CPython $PYTHONS on $PLATFORM)"
echo "install offline (Python >= 3.10, in a venv):"
echo "  python3 -m venv /opt/bkdoctor && /opt/bkdoctor/bin/pip install --no-index --find-links $OUT bkdoctor"
