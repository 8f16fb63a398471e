#!/usr/bin/env bash
# Brings the full Fashion-MNIST (60000 train + 10000 test) into data/fashion-mnist, where
# loadFashionMnist() looks first.
#
#   tools/fetch-fashion-mnist.sh [--link] [--dest DIR] [SRC_DIR]
#
#   SRC_DIR   a folder holding the four IDX files (raw or .gz):
#               train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte
#             Without it, Debian's package dataset-fashion-mnist is used (installed with apt-get if
#             /usr/share/datasets/fashion-mnist is not there yet).
#   --link    symlink the files instead of copying them
#   --dest    target folder (default: data/fashion-mnist in the project root)
#
# Validates that the four files exist and carry the right IDX magic numbers; when the project is
# built (dist/), also reads them with the project's loader and prints the sample counts.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SYSTEM_DIR=/usr/share/datasets/fashion-mnist
DEST="$ROOT/data/fashion-mnist"
LINK=0
SRC=""
STEMS=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

die() { echo "fetch-fashion-mnist: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --link) LINK=1 ;;
    --dest) shift; [ $# -gt 0 ] || die "--dest needs a folder"; DEST="$1" ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$SRC" ] || die "only one source folder may be given"; SRC="$1" ;;
  esac
  shift
done

# The path of STEM in DIR: raw if present, else .gz; empty if neither.
find_file() {
  if [ -f "$1/$2" ]; then echo "$1/$2"; elif [ -f "$1/$2.gz" ]; then echo "$1/$2.gz"; fi
}

# Fails unless DIR holds all four files.
check_present() {
  local dir="$1" missing=()
  for s in "${STEMS[@]}"; do [ -n "$(find_file "$dir" "$s")" ] || missing+=("$s(.gz)"); done
  [ ${#missing[@]} -eq 0 ] || die "$dir lacks ${missing[*]}"
}

# The first four bytes of FILE (decompressed if gzipped), as 8 hex digits.
magic_of() {
  local f="$1"
  if [ "$(head -c 2 "$f" | od -An -tx1 | tr -d ' \n')" = "1f8b" ]; then
    (set +o pipefail; gzip -cd "$f" 2>/dev/null | head -c 4 | od -An -tx1 | tr -d ' \n')
  else
    head -c 4 "$f" | od -An -tx1 | tr -d ' \n'
  fi
}

if [ -z "$SRC" ]; then
  if [ -d "$SYSTEM_DIR" ] && [ -n "$(find_file "$SYSTEM_DIR" "${STEMS[0]}")" ]; then
    echo "using Debian's dataset-fashion-mnist in $SYSTEM_DIR"
  else
    command -v apt-get >/dev/null || die "no source folder given and apt-get is not available. Download the four .gz files from https://github.com/zalandoresearch/fashion-mnist (data/fashion) and run: $0 FOLDER"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
      command -v sudo >/dev/null || die "installing dataset-fashion-mnist needs root; run as root, or give a folder holding the files"
      SUDO=sudo
    fi
    echo "installing dataset-fashion-mnist with apt-get"
    $SUDO apt-get install -y dataset-fashion-mnist || {
      $SUDO apt-get update && $SUDO apt-get install -y dataset-fashion-mnist
    } || die "apt-get could not install dataset-fashion-mnist; give a folder holding the files instead"
  fi
  SRC="$SYSTEM_DIR"
fi

[ -d "$SRC" ] || die "source folder not found: $SRC"
SRC="$(cd "$SRC" && pwd)"
check_present "$SRC"

mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
if [ "$SRC" != "$DEST" ]; then
  for s in "${STEMS[@]}"; do
    f="$(find_file "$SRC" "$s")"
    rm -f "$DEST/$s" "$DEST/$s.gz"
    if [ "$LINK" = 1 ]; then ln -s "$f" "$DEST/$(basename "$f")"; else cp "$f" "$DEST/"; fi
  done
fi

check_present "$DEST"
for s in "${STEMS[@]}"; do
  f="$(find_file "$DEST" "$s")"
  case "$s" in *images*) want=00000803 ;; *) want=00000801 ;; esac
  got="$(magic_of "$f")"
  [ "$got" = "$want" ] || die "$f has magic ${got:-<unreadable>}, expected $want; it is damaged or not the right file"
done

if [ -f "$ROOT/dist/src/data/fashion-mnist.js" ]; then
  node -e '
    const { loadFashionMnist } = require(process.argv[1]);
    try {
      const d = loadFashionMnist(process.argv[2]);
      console.log(`read ${d.train.n} training and ${d.test.n} test images from ${d.source}`);
    } catch (e) { console.error("fetch-fashion-mnist: " + e.message); process.exit(1); }
  ' "$ROOT/dist/src/data/fashion-mnist.js" "$DEST"
fi
echo "Fashion-MNIST ready in $DEST"
