#!/usr/bin/env bash
# Set up a fresh Debian bookworm machine for bkdoctor's tests and run them all. Idempotent; run as root.
#   ./test.sh            everything (what CI runs)
#   ./test.sh -k swap    extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")"

# Real components the tests run: dockerd, chronyd, iptables, sshd, fio, a registry, headless Chromium.
APT_PACKAGES=(docker.io containerd docker-registry debootstrap iptables chrony openssh-server openssh-client sudo fio chromium
              iproute2 util-linux procps kmod curl dash jq strace)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # keep the packages' own services from starting on this machine: the tests start their own, by pid
  # (a policy-rc.d that is already there is left as it is)
  made_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

# setuptools reuses build/lib and never removes a file from it: after a file moved in the tree, the old copy would
# ship too (a rule in a folder that is no longer its scope): build from a clean scratch directory
rm -rf build
python3 -m pip install -q --disable-pip-version-check ".[test]"

# A real kube-apiserver v1.20.2 built from Debian's source package (cached under /var/cache/bkdoctor: 8-9
# minutes the first time on two cores, well under a second after), with Debian's etcd.
bash tests/kube/build-apiserver.sh >/dev/null
export BKDOCTOR_REQUIRE_KUBE=1   # the cluster tests must run here, never skip

# The tests import the package from this tree; the installed one must work too.
( cd /tmp && bkdoctor --version && bkdoctor rules --json >/dev/null )

# ansible-core for the Ansible export test (its own venv, not the project's environment)
[ -x /var/cache/bkdoctor/ansible-venv/bin/ansible-playbook ] || { python3 -m venv /var/cache/bkdoctor/ansible-venv && \
  /var/cache/bkdoctor/ansible-venv/bin/pip install -q --disable-pip-version-check 'ansible-core>=2.15,<2.18'; }

# lint and format (pyproject.toml [tool.ruff]): a finding fails the run before any test starts
python3 -m ruff check --no-cache . && python3 -m ruff format --no-cache --check . >/dev/null

exec python3 -m pytest -q "$@"
