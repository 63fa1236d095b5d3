# bkdoctor host probe: read-only
LC_ALL=C; export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH
# a command that can hang, outside the bounded groups (host.BOUNDED: every built-in section that runs one is in
# them, but registry_http's `test -d` on the registry's data)
if command -v timeout >/dev/null 2>&1; then t() { timeout -k 5 10 "$@"; }; else t() { "$@"; }; fi
# a small kernel text file (/proc, /sys: never a NUL byte) read by the shell itself, printed as `cat` prints it (a
# last line without newline too); anything that is not a readable regular file goes to `cat`, for its own message
__bkd_cat() { if [ -f "$1" ] && [ -r "$1" ]; then while IFS= read -r __bkd_l; do printf '%s\n' "$__bkd_l"; done <"$1"; [ -z "$__bkd_l" ] || printf '%s' "$__bkd_l"; else cat "$1"; fi; }

BKD_BW_SECONDS=10
BKD_BW_URL=https://bkopen-1252002024.file.myqcloud.com/saas-paas3/bk_sops/bk_sops-V3.28.13.tar.gz
BKD_DOCKER_IF_NO_SOCKET=/var/run/docker.sock
BKD_DOMAIN=bk.example.com
BKD_ENDPOINTS='https://bkopen-1252002024.file.myqcloud.com/ https://hub.bktencent.com/ https://registry-1.docker.io/v2/ https://hub.bktencent.com/v2/'
BKD_FIO_DIR=/data
BKD_FIO_RUNTIME=5
BKD_FIO_SIZE=64M
BKD_HOSTS_NAMES='bk.example.com bkrepo.bk.example.com docker.bk.example.com bknodeman.bk.example.com apps.bk.example.com helm.bk.example.com bkpaas.bk.example.com bkuser.bk.example.com bkapi.bk.example.com apigw.bk.example.com bkiam.bk.example.com cmdb.bk.example.com job.bk.example.com bcs.bk.example.com bklog.bk.example.com bkmonitor.bk.example.com devops.bk.example.com codecc.bk.example.com lesscode.bk.example.com bk-apicheck.bk.example.com k8s-api.bcs.local'
BKD_INGRESS_FWD=''
BKD_INSTALL_DIR=/nonexistent/bkdoctor-golden
BKD_KUBELET_ID=''
BKD_KUBELET_SEEN=''
BKD_LOCALPV_DIR=/mnt/blueking
BKD_LOCALPV_SRC=/data/bcs/localpv
BKD_NFS_PATH=''
BKD_REGISTRY_CONFIG=/etc/docker/registry/bkhub.yaml
BKD_REGISTRY_DATA=/var/lib/registry-bkhub
BKD_REGISTRY_HOST=''
BKD_REGISTRY_PORT=5500
BKD_REGISTRY_REPO=blueking/slug-app
BKD_REGISTRY_TAG=v1.1.0-beta.27
BKD_REGISTRY_UPSTREAM=https://hub.bktencent.com
BKD_SSH_SERVER=''
__bkd_nl='
'; __bkd_L=
__bkd_rd() { case "$1" in *"$__bkd_nl"*) cat "$1"; return;; esac; if [ -n "$__bkd_L" ] && [ -f "$1" ] && [ -r "$1" ]; then printf '@@BKD-0123456789abcdef:R:%s\n' "$1"; else cat "$1"; fi; }
__bkd_files() { set --; __bkd_L=; for __bkd_f in /etc/centos-release /etc/docker/daemon.json /etc/hosts /etc/fstab /proc/meminfo /proc/modules /etc/modules-load.d/*.conf /run/modules-load.d/*.conf /usr/lib/modules-load.d/*.conf /etc/modules /proc/self/mountinfo /etc/os-release /etc/redhat-release "$BKD_REGISTRY_CONFIG" /etc/selinux/config /etc/sysctl.d/*.conf /run/sysctl.d/*.conf /usr/local/lib/sysctl.d/*.conf /usr/lib/sysctl.d/*.conf /etc/sysctl.conf /etc/timezone; do case "$__bkd_f" in *"$__bkd_nl"*) continue;; esac; [ -f "$__bkd_f" ] && [ -r "$__bkd_f" ] || continue; set -- "$@" "$__bkd_f"; done; __bkd_c=; for __bkd_f in /bin/cat /usr/bin/cat; do [ -x "$__bkd_f" ] && { __bkd_c=$__bkd_f; break; }; done; if [ $# -lt 2 ] || [ -z "$__bkd_c" ] || ! [ -r /proc/self/environ ] || ! command -v env >/dev/null 2>&1; then return 0; fi; printf '%s\n' "$@"; printf '@@BKD-0123456789abcdef:S\n1c362b4935afa4b3\n@@BKD-0123456789abcdef:S\n'; __bkd_k=$#; for __bkd_f do set -- "$@" /proc/self/environ "$__bkd_f"; done; shift $__bkd_k; env -i BKD_SEP=1c362b4935afa4b3 "$__bkd_c" -- "$@" 2>/dev/null || return 1; __bkd_L=1; }
printf '\n@@BKD-0123456789abcdef:B:__files\n'
__bkd_files </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:__files:%s\n' "$?"
__bkd_gf() ( nl='
'; while [ $# -gt 1 ]; do f=$1; n=$2; shift 2; ( r=; [ -n "$f" ] || { r=$(exec timeout -k 1 3 getent ahostsv4 "$n" 2>/dev/null); r=${r%%"$nl"*}; }; [ -n "$r" ] || { r=$(exec timeout -k 1 3 getent hosts "$n" 2>/dev/null); r=${r%%"$nl"*}; }; printf '%s %s\n' "$n" "${r%% *}" ) & done; wait )
printf '\n@@BKD-0123456789abcdef:B:bandwidth\n'
__bkd_s() { command -v curl >/dev/null 2>&1 || return 127; curl -sS -L -o /dev/null --connect-timeout 5 --max-time "$BKD_BW_SECONDS" -w '%{http_code} %{size_download} %{time_total} %{speed_download}\n' "$BKD_BW_URL"; rc=$?; [ $rc -eq 28 ] && return 0; return $rc
}; __bkd_s </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:bandwidth:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:centos_release\n'
{ __bkd_rd /etc/centos-release
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:centos_release:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:clock\n'
{ date -u +%s
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:clock:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:control_sync\n'
{ printf 'kubectl %s\n' "$(command -v kubectl || echo -)"; k="${KUBECONFIG:-$HOME/.kube/config}"; if [ -s "$k" ]; then printf 'kubeconfig %s\n' "$k"; else printf 'kubeconfig -\n'; fi; grep bcs.local /etc/hosts | sed 's/^/hosts /'; true
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:control_sync:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:cpuinfo\n'
__bkd_s() { o=; [ -r /sys/devices/system/cpu/online ] && read -r o </sys/devices/system/cpu/online; case "$o" in ""|*[!0-9,-]*|*,) grep -c '^processor' /proc/cpuinfo; return;; esac; n=0; while [ -n "$o" ]; do r=${o%%,*}; case "$o" in *,*) o=${o#*,};; *) o=;; esac; case "$r" in ""|-*|*-|*-*-*|0[0-9]*|*-0[0-9]*) grep -c '^processor' /proc/cpuinfo; return;; esac; n=$((n + ${r#*-} - ${r%-*} + 1)); done; printf '%s\n' "$n"
}; __bkd_s </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:cpuinfo:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:daemon_json\n'
__bkd_s() { test -e /etc/docker/daemon.json || return 3; __bkd_rd /etc/docker/daemon.json
}; __bkd_s </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:daemon_json:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:date_z\n'
{ case "${__bkd_tz-}" in [+-][0-9][0-9][0-9][0-9]) printf '%s\n' "$__bkd_tz";; *) date +%z;; esac
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:date_z:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:docker_bins\n'
{ command -v dockerd; command -v docker; true
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:docker_bins:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:docker_client\n'
__bkd_s() { [ -n "${BKD_DOCKER_IF_NO_SOCKET-}" ] && [ -S "$BKD_DOCKER_IF_NO_SOCKET" ] && return 125; command -v docker >/dev/null 2>&1 || return 127; docker --version
}; __bkd_s </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:docker_client:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:endpoints\n'
__bkd_s() { command -v curl >/dev/null 2>&1 || return 127; for u in $BKD_ENDPOINTS; do r=$(exec curl -sS -o /dev/null --connect-timeout 5 --max-time 8 -w '%{http_code} %{time_connect}' "$u" 2>&1); printf '%s %s %s\n' "$u" "$?" "$(echo $r | tr '\n' ' ')"; done
}; __bkd_s </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:endpoints:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:etc_hosts\n'
{ __bkd_rd /etc/hosts
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:etc_hosts:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:fio\n'
( command -v fio >/dev/null 2>&1 || exit 127; timeout -k 5 10 test -d "$BKD_FIO_DIR"; r=$?; [ $r -eq 0 ] || { [ $r -eq 1 ] && exit 3; exit $r; }; f="$BKD_FIO_DIR/.bkdoctor-fio.$$"; trap 'timeout -k 5 10 rm -f "$f"' EXIT INT TERM; run() { timeout $((BKD_FIO_RUNTIME + 30)) fio --name=bkdoctor --filename="$f" --size="$BKD_FIO_SIZE" --rw=randrw --rwmixread=50 --bs=4k --ioengine=psync --iodepth=1 --runtime="$BKD_FIO_RUNTIME" --time_based --output-format=json "$@"; }; run --direct=1 2>/dev/null || { echo '#buffered'; run --direct=0; } ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:fio:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:fstab\n'
{ __bkd_rd /etc/fstab
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:fstab:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:getent_hosts\n'
__bkd_s() { command -v getent >/dev/null 2>&1 || return 127; nl='
'; s=0.0.0.0; set --; for n in $BKD_HOSTS_NAMES; do [ "$n" = $s ] || set -- "$@" "$n" $s; done; r=; if [ $# -gt 0 ]; then r=$(exec timeout -k 1 3 getent ahostsv4 "$@" 2>/dev/null); case $? in 0|2) ;; *) case "$r" in *"$nl"*) r=${r%"$nl"*};; *) r=;; esac;; esac; fi; case "$r" in *[][*?]*) r=;; esac; q=; a=; o=$IFS; IFS=$nl; for l in $r; do case "$l" in "$s "*" $s") q="${q}A:$a "; a=;; *" ") ;; *) [ -n "$a" ] || a=${l%% *};; esac; done; IFS=$o; set --; for n in $BKD_HOSTS_NAMES; do f=; a=; if [ "$n" != $s ]; then e=${q%% *}; q=${q#* }; case "$e" in A:*) f=1; a=${e#A:};; esac; fi; if [ -n "$a" ] && [ -n "$f" ]; then printf '%s %s\n' "$n" "$a"; else set -- "$@" "$f" "$n"; fi; done; [ $# -lt 2 ] || __bkd_gf "$@"
}; __bkd_s </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:getent_hosts:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:hostname\n'
{ if [ -r /proc/sys/kernel/hostname ]; then __bkd_cat /proc/sys/kernel/hostname; else uname -n; fi
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:hostname:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:id\n'
{ u=; while read -r k r e x; do if [ "$k" = Uid: ]; then u=$e; break; fi; done </proc/self/status; if [ -n "$u" ]; then printf '%s\n' "$u"; else id -u; fi
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:id:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:localtime_link\n'
__bkd_s() { [ -h /etc/localtime ] || return 1; readlink /etc/localtime
}; __bkd_s </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:localtime_link:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:localtime_sum\n'
{ if [ /etc/localtime -ef /usr/share/zoneinfo/Asia/Shanghai ]; then echo '# /etc/localtime is /usr/share/zoneinfo/Asia/Shanghai'; else cksum /etc/localtime /usr/share/zoneinfo/Asia/Shanghai; fi
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:localtime_sum:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:meminfo\n'
{ __bkd_rd /proc/meminfo
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:meminfo:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:module_dirs\n'
{ for d in /sys/module/br_netfilter /sys/module/bridge; do if [ -e "$d" ] || [ -h "$d" ]; then printf '%s\n' "$d"; fi; done; true
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:module_dirs:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:modules\n'
__bkd_s() { [ -e /proc/modules ] || return 3; __bkd_rd /proc/modules
}; __bkd_s </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:modules:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:modules_load\n'
{ for f in /etc/modules-load.d/*.conf /run/modules-load.d/*.conf /usr/lib/modules-load.d/*.conf /etc/modules; do [ -f "$f" ] && { printf '### %s\n' "$f"; __bkd_rd "$f"; echo; }; done; true
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:modules_load:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:mountinfo\n'
{ __bkd_rd /proc/self/mountinfo
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:mountinfo:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:nproc\n'
__bkd_s() { o=; [ -r /sys/devices/system/cpu/online ] && read -r o </sys/devices/system/cpu/online; case "$o" in ""|*[!0-9,-]*|*,) getconf _NPROCESSORS_ONLN; return;; esac; n=0; while [ -n "$o" ]; do r=${o%%,*}; case "$o" in *,*) o=${o#*,};; *) o=;; esac; case "$r" in ""|-*|*-|*-*-*|0[0-9]*|*-0[0-9]*) getconf _NPROCESSORS_ONLN; return;; esac; n=$((n + ${r#*-} - ${r%-*} + 1)); done; printf '%s\n' "$n"
}; __bkd_s </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:nproc:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:os_release\n'
{ __bkd_rd /etc/os-release
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:os_release:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:proc_swaps\n'
{ __bkd_cat /proc/swaps
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:proc_swaps:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:processes\n'
{ if [ -r /proc/self/stat ]; then echo '# cat /proc/[0-9]*/stat'; cat /proc/[0-9]*/stat 2>/dev/null; true; elif command -v ps >/dev/null 2>&1; then echo '# ps -eo stat=,comm='; ps -eo stat=,comm=; true; else cat /proc/[0-9]*/comm 2>/dev/null | sort -u; fi
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:processes:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:redhat_release\n'
{ __bkd_rd /etc/redhat-release
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:redhat_release:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:registry_certs\n'
__bkd_s() { [ -n "$BKD_REGISTRY_HOST" ] || return 4; d="/etc/docker/certs.d/$BKD_REGISTRY_HOST"; test -d "$d" || return 3; ls -1 "$d"
}; __bkd_s </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:registry_certs:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:registry_config\n'
__bkd_s() { test -e "$BKD_REGISTRY_CONFIG" || return 3; __bkd_rd "$BKD_REGISTRY_CONFIG"
}; __bkd_s </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:registry_config:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:registry_http\n'
__bkd_s() { command -v curl >/dev/null 2>&1 || return 127; b="http://127.0.0.1:$BKD_REGISTRY_PORT"; printf 'v2 %s\n' "$(exec curl -s -o /dev/null --max-time 5 -w '%{http_code} %{time_total}' "$b/v2/")"; printf 'upstream %s\n' "$(exec curl -s -o /dev/null --max-time 10 -w '%{http_code} %{time_total}' "$BKD_REGISTRY_UPSTREAM/v2/")"; [ -n "$BKD_REGISTRY_REPO" ] || return 0; for i in 1 2; do printf 'manifest%s %s\n' "$i" "$(exec curl -s -o /dev/null --max-time 60 -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' -H 'Accept: application/vnd.oci.image.manifest.v1+json' -w '%{http_code} %{time_total}' "$b/v2/$BKD_REGISTRY_REPO/manifests/$BKD_REGISTRY_TAG")"; done; { t test -d "$BKD_REGISTRY_DATA/docker/registry/v2/repositories/$BKD_REGISTRY_REPO/_manifests"; } 2>/dev/null; case $? in 0) echo 'cached yes';; 1) echo 'cached no';; esac
}; __bkd_s </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:registry_http:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:registry_ingress\n'
__bkd_s() { command -v curl >/dev/null 2>&1 || return 127; [ -n "$BKD_DOMAIN" ] || return 4; if [ -n "$BKD_INGRESS_FWD" ] && [ -z "${http_proxy-}${all_proxy-}${ALL_PROXY-}${CURL_HOME-}" ]; then __bkd_r=forward; for __bkd_c in "${XDG_CONFIG_HOME:-/nonexistent}/curlrc" "${XDG_CONFIG_HOME:-/nonexistent}/.curlrc" "${HOME:-/nonexistent}/.config/curlrc" "${HOME:-/nonexistent}/.config/.curlrc" "${HOME:-/nonexistent}/.curlrc" /root/.curlrc; do [ -e "$__bkd_c" ] && __bkd_r=; done; [ -r /proc/net/if_inet6 ] && while read -r __bkd_a __bkd_a __bkd_a __bkd_c __bkd_a __bkd_a; do [ "$__bkd_c" = 00 ] && __bkd_r=; done </proc/net/if_inet6; if [ -n "${SSH_CONNECTION-}" ]; then __bkd_c=${SSH_CONNECTION#* }; __bkd_c=${__bkd_c#* }; [ "${__bkd_c%% *}" = "$BKD_SSH_SERVER" ] || __bkd_r=; fi; if [ -n "$__bkd_r" ]; then echo "$__bkd_r"; return 0; fi; fi; curl -s -o /dev/null --max-time 5 -w '%{http_code} %{remote_ip}' "http://docker.$BKD_DOMAIN/v2/"; echo " $?"
}; __bkd_s </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:registry_ingress:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:selinux_config\n'
{ __bkd_rd /etc/selinux/config
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:selinux_config:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:selinux_enforce\n'
__bkd_s() { [ -e /sys/fs/selinux/enforce ] || return 3; __bkd_cat /sys/fs/selinux/enforce
}; __bkd_s </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:selinux_enforce:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:sysctl_files\n'
{ for f in /etc/sysctl.d/*.conf /run/sysctl.d/*.conf /usr/local/lib/sysctl.d/*.conf /usr/lib/sysctl.d/*.conf /etc/sysctl.conf; do if [ -f "$f" ]; then printf '### %s\n' "$f"; __bkd_rd "$f"; echo; elif [ -h "$f" ]; then printf '#!# %s\n' "$f"; fi; done; true
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:sysctl_files:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:sysctl_runtime\n'
{ for k in net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables; do if [ -r /proc/sys/$k ]; then v=; IFS= read -r v </proc/sys/$k; printf '%s=%s\n' "$k" "$v"; else printf '%s=<absent>\n' "$k"; fi; done
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:sysctl_runtime:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:systemd_running\n'
{ test -d /run/systemd/system && echo yes || echo no
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:systemd_running:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:timezone_file\n'
__bkd_s() { [ -e /etc/timezone ] || return 3; __bkd_rd /etc/timezone
}; __bkd_s </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:timezone_file:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:uname_m\n'
__bkd_s() { p=; r=; [ -r /proc/self/personality ] && read -r p </proc/self/personality; [ -r /proc/sys/kernel/osrelease ] && read -r r </proc/sys/kernel/osrelease; if [ "$p" = 00000000 ]; then case "$r" in *.el[0-9]*.x86_64) printf '%s\n%s\n' '# uname -m not run: the arch of the kernel release, default personality' x86_64; return 0;; *.el[0-9]*.aarch64) printf '%s\n%s\n' '# uname -m not run: the arch of the kernel release, default personality' aarch64; return 0;; esac; fi; uname -m
}; __bkd_s </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:uname_m:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:uname_r\n'
{ if [ -r /proc/sys/kernel/osrelease ]; then __bkd_cat /proc/sys/kernel/osrelease; else uname -r; fi
} </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:uname_r:%s\n' "$?"
__bkd_g='trap '"'"'exit 143'"'"' TERM
t() { "$@"; }
printf '"'"'\n%s:B:kubelet_version\n'"'"' "$__bkd_m"
__bkd_s() { __bkd_k=; if [ -n "$BKD_KUBELET_ID" ]; then __bkd_kp=$PATH:; while [ -n "$__bkd_kp" ]; do __bkd_kd=${__bkd_kp%%:*}; __bkd_kp=${__bkd_kp#*:}; [ -n "$__bkd_kd" ] || __bkd_kd=.; if [ -f "$__bkd_kd/kubelet" ] && [ -x "$__bkd_kd/kubelet" ]; then __bkd_k=$__bkd_kd/kubelet; break; fi; done; fi; case "$__bkd_k" in *"
"*) __bkd_k=;; esac; [ -z "$__bkd_k" ] || ! [ -h "$__bkd_k" ] || __bkd_k=; if [ -z "$__bkd_k" ]; then command -v kubelet >/dev/null 2>&1 || return 127; if command -v env >/dev/null 2>&1; then t env GOGC=off kubelet --version; else t kubelet --version; fi; return; fi; __bkd_ki=$(TZ=UTC0 exec stat -L -c '"'"'%d %i %s %y %z'"'"' -- "$__bkd_k" 2>/dev/null) || __bkd_ki=; if [ -n "$__bkd_ki" ]; then __bkd_ki="$__bkd_k $__bkd_ki"; printf '"'"'# kubelet binary: %s\n'"'"' "$__bkd_ki"; if [ "$__bkd_ki" = "$BKD_KUBELET_SEEN" ]; then echo '"'"'# kubelet --version not run: binary unchanged since the last scan'"'"'; return 0; fi; fi; if command -v env >/dev/null 2>&1 && case "$__bkd_k" in *=*) false;; esac; then t env GOGC=off "$__bkd_k" --version; else t "$__bkd_k" --version; fi
}; __bkd_s </dev/null 2>&1
printf '"'"'\n%s:E:kubelet_version:%s\n'"'"' "$__bkd_m" "$?"
printf '"'"'\n%s:B:docker_cli_info\n'"'"' "$__bkd_m"
__bkd_s() { [ -n "${BKD_DOCKER_IF_NO_SOCKET-}" ] && [ -S "$BKD_DOCKER_IF_NO_SOCKET" ] && return 125; command -v docker >/dev/null 2>&1 || return 127; t docker info --format '"'"'{{json .}}'"'"'
}; __bkd_s </dev/null 2>&1
printf '"'"'\n%s:E:docker_cli_info:%s\n'"'"' "$__bkd_m" "$?"
printf '"'"'\n%s:B:chronyc_tracking\n'"'"' "$__bkd_m"
__bkd_s() { __bkd_sync=; command -v chronyc >/dev/null 2>&1 || return 127; r=$(exec chronyc -n tracking); e=$?; [ -z "$r" ] || printf '"'"'%s\n'"'"' "$r"; [ $e -eq 0 ] || return $e; nl='"'"'
'"'"'; case "$r" in *[][*?]*) return 0;; esac; o=$IFS; IFS=$nl; for l in $r; do case "$l" in "Leap status"*) l=${l#Leap status}; while :; do case "$l" in [" 	"]*) l=${l#?};; *) break;; esac; done; case "$l" in :?*) __bkd_sync=1; break;; esac;; esac; done; IFS=$o
}; __bkd_s </dev/null 2>&1
printf '"'"'\n%s:E:chronyc_tracking:%s\n'"'"' "$__bkd_m" "$?"
printf '"'"'\n%s:B:ntpstat\n'"'"' "$__bkd_m"
__bkd_s() { [ -z "${__bkd_sync-}" ] || { echo '"'"'# not run: chronyc tracking gave the sync state'"'"'; return 4; }; command -v ntpstat >/dev/null 2>&1 || return 127; t ntpstat
}; __bkd_s </dev/null 2>&1
printf '"'"'\n%s:E:ntpstat:%s\n'"'"' "$__bkd_m" "$?"
printf '"'"'\n%s:B:firewalld_enabled\n'"'"' "$__bkd_m"
__bkd_s() { u=; c=; for d in /etc/systemd/system /run/systemd/system /usr/local/lib/systemd/system /usr/lib/systemd/system; do e=$d/firewalld.service; [ -h "$e" ] || [ -e "$e" ] || continue; [ -n "$u" ] || u=$e; c="$c $e"; done; [ -n "$u" ] || { echo "Failed to get unit file state for firewalld.service: No such file or directory"; return 1; }; if [ -c "$u" ] || [ -b "$u" ] || { [ -f "$u" ] && ! [ -s "$u" ]; }; then case "$u" in /run/systemd/system/*) echo masked-runtime;; *) echo masked;; esac; return 1; fi; [ -f "$u" ] && [ -r "$u" ] || { t systemctl is-enabled firewalld; return; }; lc=; lr=; for d in /etc/systemd/system /run/systemd/system; do w=enabled; [ "$d" = /etc/systemd/system ] || w=enabled-runtime; [ -d "$d" ] || continue; [ -r "$d" ] && [ -x "$d" ] || { t systemctl is-enabled firewalld; return; }; for e in "$d"/*.wants/firewalld.service "$d"/*.requires/firewalld.service; do if [ -h "$e" ] || [ -e "$e" ]; then printf '"'"'%s\n# via %s\n'"'"' "$w" "$e"; return 0; fi; done; for e in "$d"/* "$d"/*/*; do q=${e%/*}; [ "$q" = "$d" ] || ! [ -h "$q" ] || continue; if ! [ -h "$e" ]; then [ -d "$e" ] || continue; [ "$q" = "$d" ] && [ -r "$e" ] && [ -x "$e" ] || { t systemctl is-enabled firewalld; return; }; continue; fi; m=; for x in $c; do [ "$x" = "$e" ] || ! [ "$e" -ef "$x" ] || m=1; done; if [ "$e" = "$d/firewalld.service" ]; then [ -n "$m" ] || { t systemctl is-enabled firewalld; return; }; [ "$d" = /etc/systemd/system ] && lc=1 || lr=1; continue; fi; case "$e" in */firewalld.service) m=1;; esac; [ -z "$m" ] || { printf '"'"'%s\n# via %s\n'"'"' "$w" "$e"; return 0; }; done; done; [ -z "$lc" ] || { echo linked; return 1; }; [ -z "$lr" ] || { echo linked-runtime; return 1; }; printf '"'"'%s%s\n'"'"' '"'"'# [Install] of '"'"' "$u"; n=0; while IFS= read -r l || [ -n "$l" ]; do n=$((n + 1)); [ $n -le 2000 ] || { echo '"'"'# not read on: more than 2000 lines'"'"'; break; }; printf '"'"'%s\n'"'"' "$l"; done <"$u"
}; __bkd_s </dev/null 2>&1
printf '"'"'\n%s:E:firewalld_enabled:%s\n'"'"' "$__bkd_m" "$?"
printf '"'"'\n%s:B:firewalld_active\n'"'"' "$__bkd_m"
__bkd_s() { u=; while read -r k r e x; do if [ "$k" = Uid: ]; then u=$e; break; fi; done </proc/self/status; [ "$u" = 0 ] && return 4; t systemctl is-active firewalld
}; __bkd_s </dev/null 2>&1
printf '"'"'\n%s:E:firewalld_active:%s\n'"'"' "$__bkd_m" "$?"
printf '"'"'\n%s:B:timedatectl\n'"'"' "$__bkd_m"
__bkd_s() { [ -z "${__bkd_sync-}" ] || { echo '"'"'# not run: chronyc tracking gave the sync state'"'"'; return 4; }; t timedatectl status
}; __bkd_s </dev/null 2>&1
printf '"'"'\n%s:E:timedatectl:%s\n'"'"' "$__bkd_m" "$?"
printf '"'"'\n%s:B:iptables\n'"'"' "$__bkd_m"
{ t iptables -w -S
} </dev/null 2>&1
printf '"'"'\n%s:E:iptables:%s\n'"'"' "$__bkd_m" "$?"
'
if command -v timeout >/dev/null 2>&1; then __bkd_m='@@BKD-0123456789abcdef' BKD_DOCKER_IF_NO_SOCKET="$BKD_DOCKER_IF_NO_SOCKET" BKD_KUBELET_ID="$BKD_KUBELET_ID" BKD_KUBELET_SEEN="$BKD_KUBELET_SEEN" timeout -k 5 15 /bin/sh -c "$__bkd_g"; else __bkd_m='@@BKD-0123456789abcdef' BKD_DOCKER_IF_NO_SOCKET="$BKD_DOCKER_IF_NO_SOCKET" BKD_KUBELET_ID="$BKD_KUBELET_ID" BKD_KUBELET_SEEN="$BKD_KUBELET_SEEN" /bin/sh -c "$__bkd_g"; fi </dev/null 2>&1
__bkd_g='trap '"'"'exit 143'"'"' TERM
t() { "$@"; }
printf '"'"'\n%s:B:localpv_dirs\n'"'"' "$__bkd_m"
{ for d in "${BKD_LOCALPV_DIR:-/mnt/blueking}"/vol* "${BKD_LOCALPV_SRC:-/data/bcs/localpv}"/vol*; do [ -d "$d" ] && echo "$d"; done; true
} </dev/null 2>&1
printf '"'"'\n%s:E:localpv_dirs:%s\n'"'"' "$__bkd_m" "$?"
printf '"'"'\n%s:B:fio_fstype\n'"'"' "$__bkd_m"
{ stat -f -c %T "$BKD_FIO_DIR"
} </dev/null 2>&1
printf '"'"'\n%s:E:fio_fstype:%s\n'"'"' "$__bkd_m" "$?"
printf '"'"'\n%s:B:registry_storage\n'"'"' "$__bkd_m"
__bkd_s() { test -d "$BKD_REGISTRY_DATA" || return 3; t df -P -k "$BKD_REGISTRY_DATA"
}; __bkd_s </dev/null 2>&1
printf '"'"'\n%s:E:registry_storage:%s\n'"'"' "$__bkd_m" "$?"
printf '"'"'\n%s:B:localpv_df\n'"'"' "$__bkd_m"
__bkd_s() { s="${BKD_LOCALPV_SRC:-/data/bcs/localpv}"; test -d "$s" || return 3; t df -P -k "$s"
}; __bkd_s </dev/null 2>&1
printf '"'"'\n%s:E:localpv_df:%s\n'"'"' "$__bkd_m" "$?"
printf '"'"'\n%s:B:df\n'"'"' "$__bkd_m"
__bkd_s() { t df -P -k / /data; r=$?; [ -d /data ] && echo '"'"'# /data is a directory'"'"'; return $r
}; __bkd_s </dev/null 2>&1
printf '"'"'\n%s:E:df:%s\n'"'"' "$__bkd_m" "$?"
printf '"'"'\n%s:B:nfs_df\n'"'"' "$__bkd_m"
__bkd_s() { [ -n "$BKD_NFS_PATH" ] || return 4; test -d "$BKD_NFS_PATH" || return 3; printf '"'"'fstype %s\n'"'"' "$(exec stat -f -c %T "$BKD_NFS_PATH")"; t df -P -k "$BKD_NFS_PATH"
}; __bkd_s </dev/null 2>&1
printf '"'"'\n%s:E:nfs_df:%s\n'"'"' "$__bkd_m" "$?"
'
if command -v timeout >/dev/null 2>&1; then __bkd_m='@@BKD-0123456789abcdef' BKD_FIO_DIR="$BKD_FIO_DIR" BKD_LOCALPV_DIR="$BKD_LOCALPV_DIR" BKD_LOCALPV_SRC="$BKD_LOCALPV_SRC" BKD_NFS_PATH="$BKD_NFS_PATH" BKD_REGISTRY_DATA="$BKD_REGISTRY_DATA" timeout -k 5 15 /bin/sh -c "$__bkd_g"; else __bkd_m='@@BKD-0123456789abcdef' BKD_FIO_DIR="$BKD_FIO_DIR" BKD_LOCALPV_DIR="$BKD_LOCALPV_DIR" BKD_LOCALPV_SRC="$BKD_LOCALPV_SRC" BKD_NFS_PATH="$BKD_NFS_PATH" BKD_REGISTRY_DATA="$BKD_REGISTRY_DATA" /bin/sh -c "$__bkd_g"; fi </dev/null 2>&1
