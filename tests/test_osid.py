"""The OS fact through the `distro` library (facts/osid.py): the same shape and values the rules were written for,
read only from the text collected on the host (never this machine's own /etc)."""

from __future__ import annotations

import pytest

from bkdoctor.facts.host import HostFacts
from bkdoctor.facts.osid import identify
from bkdoctor.facts.probe import Section

C79_OSR = (
    'NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\n'
    'PRETTY_NAME="CentOS Linux 7 (Core)"\n'
)


@pytest.mark.parametrize(
    "texts,want",
    [
        (
            {
                "os_release": C79_OSR,
                "centos_release": "CentOS Linux release 7.9.2009 (Core)\n",
                "redhat_release": "CentOS Linux release 7.9.2009 (Core)\n",
            },
            {
                "id": "centos",
                "name": "CentOS Linux 7 (Core)",
                "version": "7.9.2009",
                "release": "CentOS Linux release 7.9.2009 (Core)",
                "id_like": "rhel fedora",
            },
        ),
        (
            {"os_release": C79_OSR, "centos_release": None, "redhat_release": None},
            {"id": "centos", "name": "CentOS Linux 7 (Core)", "version": "7", "release": "", "id_like": "rhel fedora"},
        ),
        (
            {
                "os_release": 'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\nPRETTY_NAME="Ubuntu 22.04.3 LTS"\n',
                "centos_release": None,
                "redhat_release": None,
            },
            {"id": "ubuntu", "name": "Ubuntu 22.04.3 LTS", "version": "22.04", "release": "", "id_like": "debian"},
        ),
        (
            {"os_release": None, "centos_release": "CentOS release 6.10 (Final)\n", "redhat_release": None},
            {
                "id": "centos",
                "name": "CentOS release 6.10 (Final)",
                "version": "6.10",
                "release": "CentOS release 6.10 (Final)",
                "id_like": "",
            },
        ),
        # an os-release ID distro would normalise (ol -> oracle) stays as the host wrote it
        (
            {
                "os_release": 'ID="ol"\nVERSION_ID="7.9"\nPRETTY_NAME="Oracle Linux Server 7.9"\n',
                "centos_release": None,
                "redhat_release": "Red Hat Enterprise Linux Server release 7.9 (Maipo)\n",
            },
            {
                "id": "ol",
                "name": "Oracle Linux Server 7.9",
                "version": "7.9",
                "release": "Red Hat Enterprise Linux Server release 7.9 (Maipo)",
                "id_like": "",
            },
        ),
        # nothing collected: nothing identified (this machine's own /etc is never read)
        (
            {"os_release": None, "centos_release": None, "redhat_release": None},
            {"id": "", "name": "", "version": "", "release": "", "id_like": ""},
        ),
        # control characters survive as data (the terminal filter shows them inert later)
        (
            {
                "os_release": 'ID=evil\nPRETTY_NAME="Evil\x1b]0;T\x07\u202eOS 7"\nVERSION_ID="7"\n',
                "centos_release": None,
                "redhat_release": None,
            },
            {"id": "evil", "name": "Evil\x1b]0;T\x07\u202eOS 7", "version": "7", "release": "", "id_like": ""},
        ),
    ],
)
def test_identify(texts, want):
    assert identify(texts) == want


def test_the_os_fact_uses_it():
    secs = {
        "os_release": Section("os_release", 0, C79_OSR.encode()),
        "centos_release": Section("centos_release", 0, b"CentOS Linux release 7.6.1810 (Core)\n"),
        "redhat_release": Section("redhat_release", 1, b"cat: /etc/redhat-release: No such file or directory"),
    }
    assert HostFacts(secs).os["version"] == "7.6.1810"
