#!/usr/bin/env bash
# Build a real kube-apiserver v1.20.2 (the Kubernetes line BlueKing 7.1 runs on) from Debian bookworm's
# `kubernetes` source package with Debian's Go 1.19, and cache it outside the clone.
#
#   bash tests/kube/build-apiserver.sh        # prints the binary path on its last line
#
# Idempotent and non-interactive: when $BIN exists and answers --version, it only makes sure the runtime
# packages (etcd-server, openssl) are installed and prints the path. See shared docs kube-apiserver.md.
#
# Environment knobs: BKDOCTOR_CACHE (default /var/cache/bkdoctor), BKDOCTOR_BUILD_JOBS (default 2),
# BKDOCTOR_KEEP_BUILD=1 keeps the source tree (debugging).
set -euo pipefail

K8S_VERSION=v1.20.2
K8S_MAJOR=1
K8S_MINOR=20
K8S_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56   # upstream v1.20.2 tag
DEB_SRC_VERSION=1.20.5+really1.20.2-1.1+deb12u1
CACHE=${BKDOCTOR_CACHE:-/var/cache/bkdoctor}
BIN=$CACHE/kube-apiserver-$K8S_VERSION
# Bump when the way the binary is built changes: a cached binary of another recipe is rebuilt.
RECIPE=2
STAMP=$BIN.recipe
JOBS=${BKDOCTOR_BUILD_JOBS:-2}

RUNTIME_PKGS=(etcd-server openssl)
BUILD_PKGS=(golang-go rsync make dpkg-dev golang-github-modern-go-reflect2-dev ca-certificates)

log() { printf '[build-apiserver] %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (installs Debian packages)"
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive

apt_updated=0
apt_update() {
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        apt-get update -q >&2
        apt_updated=1
    fi
}

ensure_pkgs() {
    local missing=() p
    for p in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_update
        log "apt-get install ${missing[*]}"
        # keep package services (etcd-server's etcd) from starting: the tests start their own, by pid
        local guard=0
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
            guard=1
        fi
        local rc=0
        apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || rc=$?
        if [ "$guard" = 1 ]; then
            rm -f /usr/sbin/policy-rc.d
        fi
        return "$rc"
    fi
}

binary_ok() {
    [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$RECIPE" ] &&
        "$BIN" --version 2>/dev/null | grep -q "Kubernetes $K8S_VERSION"
}

ensure_pkgs "${RUNTIME_PKGS[@]}"

if binary_ok; then
    log "cached: $("$BIN" --version)"
    echo "$BIN"
    exit 0
fi

start=$(date +%s)
ensure_pkgs "${BUILD_PKGS[@]}"

# deb-src entries: copy the deb822 stanzas of debian.sources with Types: deb-src (only if none exist yet).
have_debsrc() {
    grep -Eqs '^[[:space:]]*Types:.*deb-src' /etc/apt/sources.list.d/*.sources ||
        grep -Eqs '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list
}
if ! have_debsrc; then
    src=/etc/apt/sources.list.d/debian.sources
    if [ ! -f "$src" ]; then
        log "no deb-src entry and no $src to derive one from"
        exit 1
    fi
    log "adding deb-src stanzas (/etc/apt/sources.list.d/bkdoctor-deb-src.sources)"
    sed -E 's/^Types:.*/Types: deb-src/' "$src" > /etc/apt/sources.list.d/bkdoctor-deb-src.sources
    apt_updated=0
fi
# apt-get source needs the Sources index; refresh if this apt has never fetched it.
if ! apt-cache showsrc kubernetes 2>/dev/null | grep -q "^Version: $DEB_SRC_VERSION\$"; then
    apt_updated=0
    apt_update
fi

mkdir -p "$CACHE/build" "$CACHE/gocache" "$CACHE/openapi"
# One build at a time on this machine; a second caller waits, then finds the binary.
exec 9>"$CACHE/build.lock"
flock 9
if binary_ok; then
    log "built meanwhile by another run"
    echo "$BIN"
    exit 0
fi
# Leftovers of an interrupted build (we hold the lock, so none is in use).
find "$CACHE/build" -mindepth 1 -maxdepth 1 -name 'k8s.*' -exec rm -rf {} +
WORK=$(mktemp -d "$CACHE/build/k8s.XXXXXX")
cleanup() {
    if [ "${BKDOCTOR_KEEP_BUILD:-0}" != 1 ]; then
        rm -rf "$WORK"
    else
        log "kept $WORK"
    fi
}
trap cleanup EXIT
chmod 755 "$WORK"   # lets apt's _apt user download into it (no "unsandboxed" warning)

log "apt-get source kubernetes=$DEB_SRC_VERSION in $WORK"
(cd "$WORK" && apt-get source -q -o APT::Sandbox::User=root "kubernetes=$DEB_SRC_VERSION" >&2)
TREE=$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)
if [ -z "$TREE" ] || [ ! -f "$TREE/cmd/kube-apiserver/apiserver.go" ]; then
    log "unpacked source tree not found under $WORK"
    exit 1
fi

# The vendored reflect2 1.0.1 is unsafe with Go >= 1.18: use Debian's 1.0.2.
rm -rf "$TREE/vendor/github.com/modern-go/reflect2"
cp -a /usr/share/gocode/src/github.com/modern-go/reflect2 "$TREE/vendor/github.com/modern-go/reflect2"

export CGO_ENABLED=0 GO111MODULE=off GOPROXY=off GOFLAGS="-p=$JOBS"
export GOCACHE=$CACHE/gocache
export GOPATH=$WORK/gopath
export KUBE_GIT_VERSION=$K8S_VERSION KUBE_GIT_MAJOR=$K8S_MAJOR KUBE_GIT_MINOR=$K8S_MINOR
export KUBE_GIT_COMMIT=$K8S_COMMIT KUBE_GIT_TREE_STATE=clean
mkdir -p "$GOPATH/src/k8s.io"
ln -s "$TREE" "$GOPATH/src/k8s.io/kubernetes"

# The tarball lacks the generated OpenAPI definitions. They depend only on the source, so cache them.
OPENAPI=pkg/generated/openapi/zz_generated.openapi.go
OPENAPI_CACHE=$CACHE/openapi/zz_generated.openapi.go-$DEB_SRC_VERSION
if [ -s "$OPENAPI_CACHE" ]; then
    log "using cached $OPENAPI"
    cp "$OPENAPI_CACHE" "$TREE/$OPENAPI"
else
    log "make gen_openapi"
    t0=$(date +%s)
    make -C "$GOPATH/src/k8s.io/kubernetes" gen_openapi >&2
    log "gen_openapi took $(( $(date +%s) - t0 ))s"
    cp "$TREE/$OPENAPI" "$OPENAPI_CACHE.tmp" && mv -f "$OPENAPI_CACHE.tmp" "$OPENAPI_CACHE"
fi

# The version lives in three packages (as in hack/lib/version.sh): /version is served from pkg/version,
# --version from component-base. The tarball's defaults say v0.0.0-master+<commit>.
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for pkg in k8s.io/kubernetes/pkg/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version \
           k8s.io/kubernetes/vendor/k8s.io/component-base/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$K8S_MAJOR -X $pkg.gitMinor=$K8S_MINOR"
    ldflags+=" -X $pkg.gitCommit=$K8S_COMMIT -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

log "go build kube-apiserver (GOFLAGS=$GOFLAGS, GOCACHE=$GOCACHE)"
t0=$(date +%s)
(cd "$GOPATH/src/k8s.io/kubernetes" &&
    go build -trimpath -ldflags "$ldflags" -o "$WORK/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
log "go build took $(( $(date +%s) - t0 ))s"

"$WORK/kube-apiserver" --version >&2
install -m 0755 "$WORK/kube-apiserver" "$BIN.tmp"
mv -f "$BIN.tmp" "$BIN"
echo "$RECIPE" > "$STAMP"
if ! binary_ok; then
    log "built binary does not report $K8S_VERSION"
    exit 1
fi
log "built in $(( $(date +%s) - start ))s"
echo "$BIN"
