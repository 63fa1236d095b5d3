"""The persisted-sysctl model (bkdoctor/facts/host.py: sysctl_at_boot): what systemd-sysctl 219-78.el7 applies at
boot on CentOS 7.9, on listings as the probe's sysctl_files section prints them. The same states through the real
probe on test hosts: fixtures/host/kernel-params/."""

from __future__ import annotations

from bkdoctor.facts.host import sysctl_at_boot, sysctl_listing

K = "net.ipv4.ip_forward"


def boot(*files: tuple[str, str | None]) -> dict:
    return sysctl_at_boot(list(files))


def test_files_are_read_in_name_order_whatever_their_directory():
    b = boot(("/etc/sysctl.d/50-x.conf", f"{K} = 0\n"), ("/run/sysctl.d/10-y.conf", f"{K} = 1\n"))
    assert b["persisted"][K] == {"value": "0", "file": "/etc/sysctl.d/50-x.conf", "line": 1}
    assert b["order"] == ["/run/sysctl.d/10-y.conf", "/etc/sysctl.d/50-x.conf"]


def test_a_name_in_an_earlier_directory_hides_the_same_name_in_a_later_one():
    b = boot(
        ("/etc/sysctl.d/60-k.conf", "# nothing\n"),
        ("/run/sysctl.d/60-k.conf", f"{K} = 2\n"),
        ("/usr/local/lib/sysctl.d/60-k.conf", f"{K} = 3\n"),
        ("/usr/lib/sysctl.d/60-k.conf", f"{K} = 4\n"),
    )
    assert K not in b["persisted"] and b["order"] == ["/etc/sysctl.d/60-k.conf"]
    assert b["masked"] == {
        "/run/sysctl.d/60-k.conf": "/etc/sysctl.d/60-k.conf",
        "/usr/local/lib/sysctl.d/60-k.conf": "/etc/sysctl.d/60-k.conf",
        "/usr/lib/sysctl.d/60-k.conf": "/etc/sysctl.d/60-k.conf",
    }
    b = boot(("/run/sysctl.d/60-k.conf", f"{K} = 2\n"), ("/usr/lib/sysctl.d/60-k.conf", f"{K} = 4\n"))
    assert b["persisted"][K]["value"] == "2"


def test_a_symlink_that_is_no_regular_file_masks_its_name():
    text = (
        "#!# /etc/sysctl.d/60-k.conf\n"
        "### /usr/lib/sysctl.d/60-k.conf\n"
        f"{K} = 1\n\n"
        "### /usr/lib/sysctl.d/70-z.conf\n"
        "net.bridge.bridge-nf-call-iptables = 1"  # no newline at the end: the section's `echo` ends the line
        "\n"
    )
    listing = sysctl_listing(text)
    assert listing == [
        ("/etc/sysctl.d/60-k.conf", None),
        ("/usr/lib/sysctl.d/60-k.conf", f"{K} = 1\n"),
        ("/usr/lib/sysctl.d/70-z.conf", "net.bridge.bridge-nf-call-iptables = 1\n"),
    ]
    b = sysctl_at_boot(listing)
    assert K not in b["persisted"] and b["masked"] == {"/usr/lib/sysctl.d/60-k.conf": "/etc/sysctl.d/60-k.conf"}
    assert b["persisted"]["net.bridge.bridge-nf-call-iptables"]["file"] == "/usr/lib/sysctl.d/70-z.conf"


def test_etc_sysctl_conf_is_read_last_of_all():
    """RHEL 7's patch "sysctl: bring back /etc/sysctl.conf": after every sysctl.d file, even one sorting after
    99-sysctl.conf (its link); the file named is the last to assign the value."""
    b = boot(
        ("/etc/sysctl.d/99-sysctl.conf", f"{K} = 0\n"),
        ("/etc/sysctl.d/zz-late.conf", f"{K} = 1\n"),
        ("/etc/sysctl.conf", f"# c\n{K} = 0\n"),
    )
    assert b["persisted"][K] == {"value": "0", "file": "/etc/sysctl.conf", "line": 2}
    assert b["order"][-1] == "/etc/sysctl.conf"


def test_lines_as_systemd_219_reads_them():
    b = boot(
        (
            "/etc/sysctl.d/a.conf",
            "; comment\n  # comment\nnot an assignment\n"
            "net/bridge/bridge-nf-call-iptables=1\n"  # slashes: the same key
            "-net.bridge.bridge-nf-call-ip6tables = 1\n"  # no "-" prefix in 219: another (unknown) key
            f"\t{K}\t=\t1 \r\n",
        ),
        ("/etc/sysctl.d/.hidden.conf", f"{K} = 0\n"),  # names starting with "." are not read
    )
    p = b["persisted"]
    assert p["net.bridge.bridge-nf-call-iptables"]["value"] == "1"
    assert "net.bridge.bridge-nf-call-ip6tables" not in p and "-net.bridge.bridge-nf-call-ip6tables" in p
    assert p[K] == {"value": "1", "file": "/etc/sysctl.d/a.conf", "line": 6}


def test_a_header_like_comment_of_another_directory_is_content():
    listing = sysctl_listing("### /etc/sysctl.d/a.conf\n### tuning\n### /tmp/x.conf\nk = 1\n\n")
    assert listing == [("/etc/sysctl.d/a.conf", "### tuning\n### /tmp/x.conf\nk = 1\n\n")]
