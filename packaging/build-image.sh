#!/usr/bin/env bash
# shellcheck disable=SC2016  # single-quoted scripts run in a chroot, expanded there on purpose
# Build the bkdoctor container image without a base image or a registry, and save it for air-gapped sites:
#
#   packaging/build-image.sh [--out DIR] [--wheelhouse DIR] [--tag NAME:TAG] [--no-save] [--refresh-rootfs]
#
#   1. a minimal Debian bookworm root filesystem (debootstrap --variant=minbase: python3, python3-venv,
#      ca-certificates, tzdata; security updates applied), cached under
#      /var/cache/bkdoctor/rootfs-bookworm/<key of the package list> (debootstrap: ~2-4 minutes, once);
#   2. bkdoctor and its wheels (packaging/wheelhouse.sh, or --wheelhouse DIR) installed into a venv at
#      /opt/bkdoctor inside it, with no network;
#   3. trimmed (apt lists, docs but the copyright files, man pages, translations, no pip in the venv, Python
#      bytecode only for the modules bkdoctor imports) and packed with `tar | docker import` into
#      bkdoctor:<version>, entrypoint /opt/bkdoctor/bin/bkdoctor (~186 MiB; ~40-80 s with the cached rootfs);
#   4. `docker save -o DIR/bkdoctor-<version>.tar` (default DIR: dist/) plus a .sha256 beside it.
#
# Runs as root (debootstrap, chroot). Talks to whatever dockerd the docker CLI is pointed at (DOCKER_HOST,
# docker context): nothing is pulled, no registry is used. The Debian mirror is the one this machine's apt
# uses (/etc/apt/sources.list.d/*.sources or sources.list), else deb.debian.org; override with
# BKDOCTOR_DEBIAN_MIRROR / BKDOCTOR_DEBIAN_SECURITY_MIRROR (the latter "none": no security updates).
# BKDOCTOR_CACHE_DIR moves the cache (default /var/cache/bkdoctor).
#
# In the image: HOME=/root, workdir /work, LANG=C.UTF-8 (English reports; --lang zh or -e LANG=zh_CN.UTF-8),
# history database under /work/reports/.bkdoctor (XDG_DATA_HOME), so a mounted reports directory keeps it; so does
# the scans' cache (XDG_CACHE_HOME: each node's kubelet identity and version, not run again while unchanged).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/dist"
WHEELHOUSE=""
TAG=""
SAVE=1
REFRESH=0

usage() { awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --wheelhouse) WHEELHOUSE="$2"; shift 2 ;;
    --tag) TAG="$2"; shift 2 ;;
    --no-save) SAVE=0; shift ;;
    --refresh-rootfs) REFRESH=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

SUITE=bookworm
PACKAGES=(python3 python3-venv ca-certificates tzdata)
RECIPE=1  # bump when the cached rootfs is made differently (part of the cache key)
CACHE_BASE="${BKDOCTOR_CACHE_DIR:-/var/cache/bkdoctor}/rootfs-$SUITE"
T0=$(date +%s)

say() { printf '[build-image %3ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }
die() { echo "build-image: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and chroot)"
for t in docker tar unshare chroot flock sha256sum; do
  command -v "$t" >/dev/null || die "$t not found"
done

VERSION="$(sed -n 's/^__version__ *= *["'"'"']\([^"'"'"']*\)["'"'"'].*/\1/p' "$ROOT/bkdoctor/__init__.py")"
[ -n "$VERSION" ] || die "no __version__ in bkdoctor/__init__.py"
TAG="${TAG:-bkdoctor:$VERSION}"

# ---- the dockerd first: no point in building for ten minutes to fail at the end
if ! server="$(docker version --format '{{.Server.Version}}' 2>&1)"; then
  die "no dockerd answers (DOCKER_HOST=${DOCKER_HOST:-unset}): $server"
fi
say "bkdoctor $VERSION -> $TAG (dockerd $server${DOCKER_HOST:+ at $DOCKER_HOST})"

# ---- Debian mirrors, as this machine's apt has them
apt_uri() {  # $1: suite to look for; prints the first deb URI that serves it
  local suite="$1" f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '
      function flush() { if (deb && has && uri != "" && !done) { print uri; done = 1 } deb = 0; has = 0; uri = "" }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]*#/ { next }
      tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
      tolower($1) == "uris:" { uri = $2 }
      tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) has = 1 }
      END { flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '$1 == "deb" { u = $2; s = $3; if ($2 ~ /^\[/) { for (i = 2; i <= NF; i++) if ($i ~ /\]$/) break; u = $(i + 1); s = $(i + 2) }
                                         if (s == suite) print u }' "$f"
  done
}
MIRROR="${BKDOCTOR_DEBIAN_MIRROR:-$(apt_uri "$SUITE" | head -n1)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SECURITY="${BKDOCTOR_DEBIAN_SECURITY_MIRROR:-$(apt_uri "$SUITE-security" | head -n1)}"
SECURITY="${SECURITY:-http://deb.debian.org/debian-security}"

ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
KEY="$(printf '%s\n' "suite=$SUITE" "variant=minbase" "arch=$ARCH" "recipe=$RECIPE" \
        "packages=$(printf '%s\n' "${PACKAGES[@]}" | sort | tr '\n' ' ')" | sha256sum | cut -c1-16)"
CACHED="$CACHE_BASE/$KEY"

# Everything this run creates lives under $work (or $CACHE_BASE/.tmp-*); chroot commands run in a private
# mount namespace (unshare), so their /proc mount disappears with them, even on failure.
work=""
tmp_rootfs=""
cleanup() {
  local rc=$?
  [ -n "$tmp_rootfs" ] && rm -rf --one-file-system "$tmp_rootfs"
  [ -n "$work" ] && rm -rf --one-file-system "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_root() {  # in_root ROOTFS CMD...: run a command chrooted into ROOTFS, with /proc, clean environment
  local r="$1"; shift
  unshare --mount --propagation private -- /bin/sh -c '
    r="$1"; shift
    mount -t proc proc "$r/proc"
    exec chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
         HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"' sh "$r" "$@"
}

# ---- 1. the cached Debian root filesystem
build_rootfs() {
  command -v debootstrap >/dev/null || {
    say "installing debootstrap (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1 || {
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  }
  tmp_rootfs="$(mktemp -d "$CACHE_BASE/.tmp-$KEY.XXXXXX")"
  local r="$tmp_rootfs/rootfs"
  say "debootstrap $SUITE (minbase + ${PACKAGES[*]}) from $MIRROR"
  local pkgs
  pkgs="$(IFS=,; echo "${PACKAGES[*]}")"
  # in a private mount namespace: the /proc and /sys debootstrap mounts in the target go away with it, even
  # when it is killed half-way
  if ! unshare --mount --propagation private -- \
        debootstrap --variant=minbase --arch="$ARCH" --include="$pkgs" "$SUITE" "$r" "$MIRROR" \
        >"$tmp_rootfs/debootstrap.log" 2>&1; then
    tail -n 30 "$tmp_rootfs/debootstrap.log" >&2
    [ -f "$r/debootstrap/debootstrap.log" ] && tail -n 30 "$r/debootstrap/debootstrap.log" >&2
    die "debootstrap failed"
  fi
  # dpkg leaves out docs (copyright files kept), man pages and translations from now on, in upgrades too
  mkdir -p "$r/etc/dpkg/dpkg.cfg.d"
  cat >"$r/etc/dpkg/dpkg.cfg.d/01-bkdoctor-slim" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
EOF
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
  chmod 755 "$r/usr/sbin/policy-rc.d"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$MIRROR" "$SUITE" "$SUITE"
    if [ "$SECURITY" != none ]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$SECURITY" "$SUITE"
    fi
  } >"$r/etc/apt/sources.list.d/debian.sources"
  rm -f "$r/etc/apt/sources.list"
  cp /etc/resolv.conf "$r/etc/resolv.conf" 2>/dev/null || true
  say "applying $SUITE-updates and security updates"
  if ! in_root "$r" sh -c 'apt-get update -qq && apt-get -y -qq -o Dpkg::Options::=--force-confold dist-upgrade && apt-get clean' \
        >"$tmp_rootfs/upgrade.log" 2>&1; then
    tail -n 30 "$tmp_rootfs/upgrade.log" >&2
    die "apt-get dist-upgrade in the rootfs failed (BKDOCTOR_DEBIAN_SECURITY_MIRROR=none skips the security suite)"
  fi
  rm -f "$r/usr/sbin/policy-rc.d"
  # what the image never needs
  rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
         "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old "$r"/var/log/* "$r/debootstrap" \
         "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/lintian
  find "$r/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  # the official Debian mirrors in the image, not the build machine's (no apt at the air-gapped site anyway)
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$SUITE" "$SUITE" "$SUITE" >"$r/etc/apt/sources.list.d/debian.sources"
  : >"$r/etc/resolv.conf"
  : >"$r/etc/hostname"
  {
    echo "key=$KEY"; echo "suite=$SUITE"; echo "arch=$ARCH"; echo "packages=${PACKAGES[*]}"
    echo "mirror=$MIRROR"; echo "security=$SECURITY"; echo "created=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } >"$tmp_rootfs/info"
  rm -rf "$CACHED" "$CACHED.info"
  mv "$r" "$CACHED"
  mv "$tmp_rootfs/info" "$CACHED.info"
  rm -rf "$tmp_rootfs"
  tmp_rootfs=""
}

mkdir -p "$CACHE_BASE"
exec 9>"$CACHE_BASE/.lock"
flock 9   # one builder of the cache at a time; the copy below is made under the lock too
if [ "$REFRESH" = 1 ] || [ ! -f "$CACHED.info" ] || [ ! -x "$CACHED/usr/bin/python3" ]; then
  build_rootfs
else
  say "cached rootfs $CACHED ($(sed -n 's/^created=//p' "$CACHED.info"))"
fi

work="$(mktemp -d "${TMPDIR:-/var/tmp}/bkdoctor-image.XXXXXX")"
rootfs="$work/rootfs"
cp -a "$CACHED" "$rootfs"
exec 9>&-
PYVER="$(readlink "$rootfs/usr/bin/python3" | sed -n 's/^python\([0-9]*\.[0-9]*\)$/\1/p')"
[ -n "$PYVER" ] || die "cannot tell the rootfs's Python version"

# ---- 2. bkdoctor into a venv, from wheels only
if [ -z "$WHEELHOUSE" ]; then
  say "wheelhouse for CPython $PYVER"
  WHEELHOUSE_PYTHONS="$PYVER" "$ROOT/packaging/wheelhouse.sh" "$work/wheelhouse" >"$work/wheelhouse.log" 2>&1 || {
    tail -n 30 "$work/wheelhouse.log" >&2; die "packaging/wheelhouse.sh failed"; }
  WHEELHOUSE="$work/wheelhouse"
fi
[ -d "$WHEELHOUSE" ] || die "no wheelhouse at $WHEELHOUSE"
ls "$WHEELHOUSE"/bkdoctor-"$VERSION"-*.whl >/dev/null 2>&1 || die "$WHEELHOUSE has no bkdoctor $VERSION wheel"
cp -a "$WHEELHOUSE" "$rootfs/tmp/wheelhouse"
say "installing bkdoctor $VERSION into /opt/bkdoctor (CPython $PYVER, no index)"
if ! in_root "$rootfs" sh -ec '
    python3 -m venv --without-pip /opt/bkdoctor
    # pip runs from Debian'"'"'s pip wheel (python3-venv brings it) and is no part of the venv; no bytecode yet
    pip_whl="$(ls /usr/share/python-wheels/pip-*.whl | head -n1)"
    /opt/bkdoctor/bin/python "$pip_whl/pip" install -q --disable-pip-version-check --no-compile --no-index \
        --find-links /tmp/wheelhouse bkdoctor=='"$VERSION"'
    # no installer in the image: sqlite-utils lists pip for its own "install" subcommand only
    /opt/bkdoctor/bin/python "$pip_whl/pip" uninstall -q -y pip' >"$work/install.log" 2>&1; then
  cat "$work/install.log" >&2
  die "installing into the rootfs failed"
fi
site="$rootfs/opt/bkdoctor/lib/python$PYVER/site-packages"
# a clear message instead of "can't start new thread" under old runtimes' seccomp (see the module)
cp "$ROOT/packaging/image/_bkdoctor_image_check.py" "$ROOT/packaging/image/bkdoctor-image-check.pth" "$site/"
find "$site" -mindepth 2 -maxdepth 2 -type d \( -name tests -o -name test \) -prune -exec rm -rf {} +
# bytecode only for what bkdoctor imports (see warmup.py): drop every __pycache__, then let a run write them
cp "$ROOT/packaging/image/warmup.py" "$rootfs/tmp/warmup.py"
say "bytecode for what bkdoctor imports"
if ! in_root "$rootfs" sh -ec '
    find /opt/bkdoctor /usr/lib/python3* -name __pycache__ -type d -prune -exec rm -rf {} +
    cd /tmp && /opt/bkdoctor/bin/python /tmp/warmup.py' >"$work/warmup.log" 2>&1; then
  cat "$work/warmup.log" >&2
  die "bkdoctor does not run in the rootfs"
fi
rm -rf "$rootfs/tmp/wheelhouse" "$rootfs/root/.cache" "$rootfs"/tmp/* "$rootfs"/tmp/.[!.]* "$rootfs"/var/log/*
mkdir -p "$rootfs/work/reports"
cat >"$rootfs/opt/bkdoctor/IMAGE" <<EOF
bkdoctor $VERSION
built $(date -u +%Y-%m-%dT%H:%M:%SZ) from debian $SUITE rootfs $KEY
EOF

# ---- 3. pack and import
say "docker import $TAG"
changes=(
  --change 'ENTRYPOINT ["/opt/bkdoctor/bin/bkdoctor"]'
  --change 'CMD ["--help"]'
  --change 'WORKDIR /work'
  --change 'ENV PATH=/opt/bkdoctor/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change 'ENV HOME=/root'
  --change 'ENV LANG=C.UTF-8'
  --change 'ENV PYTHONUTF8=1'
  --change 'ENV PYTHONDONTWRITEBYTECODE=1'
  --change 'ENV XDG_DATA_HOME=/work/reports/.bkdoctor'
  --change 'ENV XDG_CACHE_HOME=/work/reports/.bkdoctor/cache'
  --change "LABEL org.opencontainers.image.title=bkdoctor org.opencontainers.image.version=$VERSION"
)
image_id="$(tar -C "$rootfs" --numeric-owner --one-file-system --exclude='./dev/*' --exclude='./proc/*' \
              --exclude='./sys/*' -cf - . | docker import "${changes[@]}" - "$TAG")"
size="$(docker image inspect --format '{{.Size}}' "$TAG")"
say "image $TAG ${image_id#sha256:}: $(( size / 1024 / 1024 )) MiB"
docker run --rm --network none "$TAG" --version >/dev/null || die "the image does not run: docker run $TAG --version"

# ---- 4. save for air-gapped sites
if [ "$SAVE" = 1 ]; then
  mkdir -p "$OUT"
  name="$(echo "${TAG##*/}" | tr ':' '-')"
  tarball="$OUT/$name.tar"
  docker save -o "$tarball.part" "$TAG"
  mv "$tarball.part" "$tarball"
  (cd "$OUT" && sha256sum "$name.tar" >"$name.tar.sha256")
  say "saved $tarball ($(( $(stat -c %s "$tarball") / 1024 / 1024 )) MiB; sha256 in $name.tar.sha256)"
  echo "on the target: docker load -i $name.tar"
fi
say "done"
