# bkdoctor host probe: read-only
LC_ALL=C; export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH
if command -v timeout >/dev/null 2>&1; then t() { timeout 10 "$@"; }; else t() { "$@"; }; fi

BKD_BW_SECONDS=10
BKD_BW_URL=https://bkopen-1252002024.file.myqcloud.com/saas-paas3/bk_sops/bk_sops-V3.28.13.tar.gz
BKD_DOCKER_IF_NO_SOCKET=/var/run/docker.sock
BKD_DOMAIN=bk.example.com
BKD_ENDPOINTS='https://bkopen-1252002024.file.myqcloud.com/ https://hub.bktencent.com/ https://registry-1.docker.io/v2/ https://hub.bktencent.com/v2/'
BKD_FIO_DIR=/data
BKD_FIO_RUNTIME=5
BKD_FIO_SIZE=64M
BKD_HOSTS_NAMES='bk.example.com bkrepo.bk.example.com docker.bk.example.com bknodeman.bk.example.com apps.bk.example.com helm.bk.example.com bkpaas.bk.example.com bkuser.bk.example.com bkapi.bk.example.com apigw.bk.example.com bkiam.bk.example.com cmdb.bk.example.com job.bk.example.com bcs.bk.example.com bklog.bk.example.com bkmonitor.bk.example.com devops.bk.example.com codecc.bk.example.com lesscode.bk.example.com bk-apicheck.bk.example.com k8s-api.bcs.local'
BKD_INSTALL_DIR=/nonexistent/bkdoctor-golden
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
printf '\n@@BKD-0123456789abcdef:B:bandwidth\n'
( command -v curl >/dev/null 2>&1 || exit 127; curl -sS -L -o /dev/null --connect-timeout 5 --max-time "$BKD_BW_SECONDS" -w '%{http_code} %{size_download} %{time_total} %{speed_download}\n' "$BKD_BW_URL"; rc=$?; [ $rc -eq 28 ] && exit 0; exit $rc ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:bandwidth:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:centos_release\n'
( cat /etc/centos-release ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:centos_release:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:chronyc_tracking\n'
( command -v chronyc >/dev/null 2>&1 || exit 127; t chronyc -n tracking ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:chronyc_tracking:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:clock\n'
( date -u +%s ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:clock:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:control_sync\n'
( printf 'kubectl %s\n' "$(command -v kubectl || echo -)"; k="${KUBECONFIG:-$HOME/.kube/config}"; if [ -s "$k" ]; then printf 'kubeconfig %s\n' "$k"; else printf 'kubeconfig -\n'; fi; grep bcs.local /etc/hosts | sed 's/^/hosts /'; true ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:control_sync:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:cpuinfo\n'
( grep -c '^processor' /proc/cpuinfo ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:cpuinfo:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:daemon_json\n'
( test -e /etc/docker/daemon.json || exit 3; cat /etc/docker/daemon.json ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:daemon_json:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:date_z\n'
( date +%z ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:date_z:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:df\n'
( t df -P -k / /data ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:df:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:df_data\n'
( test -d /data || exit 3; t df -P -k /data ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:df_data:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:docker_bins\n'
( command -v dockerd; command -v docker; true ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:docker_bins:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:docker_cli_info\n'
( [ -n "${BKD_DOCKER_IF_NO_SOCKET-}" ] && [ -S "$BKD_DOCKER_IF_NO_SOCKET" ] && exit 125; command -v docker >/dev/null 2>&1 || exit 127; t docker info --format '{{json .}}' ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:docker_cli_info:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:docker_client\n'
( [ -n "${BKD_DOCKER_IF_NO_SOCKET-}" ] && [ -S "$BKD_DOCKER_IF_NO_SOCKET" ] && exit 125; command -v docker >/dev/null 2>&1 || exit 127; docker --version ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:docker_client:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:endpoints\n'
( command -v curl >/dev/null 2>&1 || exit 127; for u in $BKD_ENDPOINTS; do r=$(curl -sS -o /dev/null --connect-timeout 5 --max-time 8 -w '%{http_code} %{time_connect}' "$u" 2>&1); printf '%s %s %s\n' "$u" "$?" "$(echo $r | tr '\n' ' ')"; done ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:endpoints:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:etc_hosts\n'
( cat /etc/hosts ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:etc_hosts:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:fio\n'
( command -v fio >/dev/null 2>&1 || exit 127; test -d "$BKD_FIO_DIR" || exit 3; f="$BKD_FIO_DIR/.bkdoctor-fio.$$"; trap 'rm -f "$f"' EXIT INT TERM; run() { timeout $((BKD_FIO_RUNTIME + 30)) fio --name=bkdoctor --filename="$f" --size="$BKD_FIO_SIZE" --rw=randrw --rwmixread=50 --bs=4k --ioengine=psync --iodepth=1 --runtime="$BKD_FIO_RUNTIME" --time_based --output-format=json "$@"; }; run --direct=1 2>/dev/null || { echo '#buffered'; run --direct=0; } ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:fio:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:fio_fstype\n'
( stat -f -c %T "$BKD_FIO_DIR" ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:fio_fstype:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:firewalld_active\n'
( t systemctl is-active firewalld ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:firewalld_active:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:firewalld_enabled\n'
( t systemctl is-enabled firewalld ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:firewalld_enabled:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:firewalld_wants\n'
( ls -1 /etc/systemd/system/multi-user.target.wants/ /etc/systemd/system/basic.target.wants/ ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:firewalld_wants:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:fstab\n'
( cat /etc/fstab ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:fstab:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:getent_hosts\n'
( command -v getent >/dev/null 2>&1 || exit 127; for n in $BKD_HOSTS_NAMES; do ( r=$(timeout 3 getent ahostsv4 "$n" 2>/dev/null | head -n 1); [ -n "$r" ] || r=$(timeout 3 getent hosts "$n" 2>/dev/null | head -n 1); printf '%s %s\n' "$n" "${r%% *}" ) & done; wait ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:getent_hosts:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:hostname\n'
( uname -n ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:hostname:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:id\n'
( id -u ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:id:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:iptables\n'
( t iptables -w -S ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:iptables:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:kubelet_version\n'
( command -v kubelet >/dev/null 2>&1 || exit 127; t kubelet --version ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:kubelet_version:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:localpv_df\n'
( s="${BKD_LOCALPV_SRC:-/data/bcs/localpv}"; test -d "$s" || exit 3; t df -P -k "$s" ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:localpv_df:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:localpv_dirs\n'
( for d in "${BKD_LOCALPV_DIR:-/mnt/blueking}"/vol* "${BKD_LOCALPV_SRC:-/data/bcs/localpv}"/vol*; do [ -d "$d" ] && echo "$d"; done; true ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:localpv_dirs:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:localtime_link\n'
( readlink /etc/localtime ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:localtime_link:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:localtime_sum\n'
( cksum /etc/localtime /usr/share/zoneinfo/Asia/Shanghai ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:localtime_sum:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:meminfo\n'
( cat /proc/meminfo ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:meminfo:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:module_dirs\n'
( ls -d /sys/module/br_netfilter /sys/module/bridge 2>/dev/null; true ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:module_dirs:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:modules\n'
( cat /proc/modules ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:modules:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:modules_load\n'
( for f in /etc/modules-load.d/*.conf /run/modules-load.d/*.conf /usr/lib/modules-load.d/*.conf /etc/modules; do [ -f "$f" ] && { printf '### %s\n' "$f"; cat "$f"; echo; }; done; true ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:modules_load:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:mountinfo\n'
( cat /proc/self/mountinfo ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:mountinfo:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:nfs_df\n'
( [ -n "$BKD_NFS_PATH" ] || exit 4; test -d "$BKD_NFS_PATH" || exit 3; printf 'fstype %s\n' "$(stat -f -c %T "$BKD_NFS_PATH")"; t df -P -k "$BKD_NFS_PATH" ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:nfs_df:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:nproc\n'
( getconf _NPROCESSORS_ONLN ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:nproc:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:ntpstat\n'
( command -v ntpstat >/dev/null 2>&1 || exit 127; t ntpstat ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:ntpstat:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:os_release\n'
( cat /etc/os-release ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:os_release:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:proc_swaps\n'
( cat /proc/swaps ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:proc_swaps:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:processes\n'
( if command -v ps >/dev/null 2>&1; then ps -eo stat=,comm= | awk '$1 !~ /^Z/ {print $2}' | sort -u; else cat /proc/[0-9]*/comm 2>/dev/null | sort -u; fi ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:processes:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:redhat_release\n'
( cat /etc/redhat-release ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:redhat_release:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:registry_certs\n'
( [ -n "$BKD_REGISTRY_HOST" ] || exit 4; d="/etc/docker/certs.d/$BKD_REGISTRY_HOST"; test -d "$d" || exit 3; ls -1 "$d" ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:registry_certs:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:registry_config\n'
( test -e "$BKD_REGISTRY_CONFIG" || exit 3; cat "$BKD_REGISTRY_CONFIG" ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:registry_config:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:registry_http\n'
( command -v curl >/dev/null 2>&1 || exit 127; b="http://127.0.0.1:$BKD_REGISTRY_PORT"; printf 'v2 %s\n' "$(curl -s -o /dev/null --max-time 5 -w '%{http_code} %{time_total}' "$b/v2/")"; printf 'upstream %s\n' "$(curl -s -o /dev/null --max-time 10 -w '%{http_code} %{time_total}' "$BKD_REGISTRY_UPSTREAM/v2/")"; [ -n "$BKD_REGISTRY_REPO" ] || exit 0; for i in 1 2; do printf 'manifest%s %s\n' "$i" "$(curl -s -o /dev/null --max-time 60 -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' -H 'Accept: application/vnd.oci.image.manifest.v1+json' -w '%{http_code} %{time_total}' "$b/v2/$BKD_REGISTRY_REPO/manifests/$BKD_REGISTRY_TAG")"; done; if [ -d "$BKD_REGISTRY_DATA/docker/registry/v2/repositories/$BKD_REGISTRY_REPO/_manifests" ]; then echo 'cached yes'; else echo 'cached no'; fi ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:registry_http:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:registry_ingress\n'
( command -v curl >/dev/null 2>&1 || exit 127; [ -n "$BKD_DOMAIN" ] || exit 4; curl -s -o /dev/null --max-time 5 -w '%{http_code} %{remote_ip}' "http://docker.$BKD_DOMAIN/v2/"; echo " $?" ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:registry_ingress:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:registry_storage\n'
( test -d "$BKD_REGISTRY_DATA" || exit 3; t df -P -k "$BKD_REGISTRY_DATA" ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:registry_storage:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:selinux_config\n'
( cat /etc/selinux/config ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:selinux_config:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:selinux_enforce\n'
( cat /sys/fs/selinux/enforce ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:selinux_enforce:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:sysctl_files\n'
( for f in /etc/sysctl.conf /etc/sysctl.d/*.conf /run/sysctl.d/*.conf /usr/lib/sysctl.d/*.conf; do [ -f "$f" ] && { printf '### %s\n' "$f"; cat "$f"; echo; }; done; true ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:sysctl_files:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:sysctl_runtime\n'
( for k in net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables net/bridge/bridge-nf-call-ip6tables; do if [ -r /proc/sys/$k ]; then printf '%s=%s\n' "$k" "$(cat /proc/sys/$k)"; else printf '%s=<absent>\n' "$k"; fi; done ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:sysctl_runtime:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:systemd_running\n'
( test -d /run/systemd/system && echo yes || echo no ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:systemd_running:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:timedatectl\n'
( t timedatectl status ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:timedatectl:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:timezone_file\n'
( cat /etc/timezone ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:timezone_file:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:uname_m\n'
( uname -m ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:uname_m:%s\n' "$?"
printf '\n@@BKD-0123456789abcdef:B:uname_r\n'
( uname -r ) </dev/null 2>&1
printf '\n@@BKD-0123456789abcdef:E:uname_r:%s\n' "$?"
