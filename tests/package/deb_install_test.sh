#!/usr/bin/env bash
# The tern .deb, built from this build tree with CPack, installed into a clean root and
# started from the installed paths (docs/packages.md).
#
#   deb_install_test.sh BUILD_DIR WORK_DIR
#
# The clean root is an overlay over / in a private mount and network namespace: dpkg
# installs the package there (its maintainer scripts make the tern user and
# /var/lib/tern), ternd starts as the unit's user with the unit's command line and the
# shipped configuration, and the installed tern deploys and calls the installed example.
# Nothing reaches the machine's own root, and everything goes with the namespace.
# Needs root (namespaces, overlayfs, chroot); exits 77 (skipped) without it.
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }

if [ "${1:-}" = --inside ]; then
  deb=$2; work=$3
  root=$work/root
  mkdir -p "$work/upper" "$work/ovl" "$root"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$work/upper,workdir=$work/ovl" "$root"
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount -t tmpfs tmpfs "$root/run"
  mount -t tmpfs tmpfs "$root/tmp"
  ip link set lo up
  in_root() { chroot "$root" "$@"; }

  in_root getent passwd tern >/dev/null && fail "the clean root already has a tern user"
  [ -e "$root/usr/bin/ternd" ] && fail "the clean root already has /usr/bin/ternd"
  cp "$deb" "$root/tmp/tern.deb"
  in_root dpkg -i /tmp/tern.deb > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
  in_root dpkg-query -W -f='${Status}\n' tern | grep -qx "install ok installed" \
    || fail "dpkg does not list tern as installed"

  # What the maintainer scripts made.
  in_root getent passwd tern | grep -q ":/var/lib/tern:/usr/sbin/nologin$" \
    || fail "no tern system user: $(in_root getent passwd tern || true)"
  [ "$(in_root stat -c '%U:%G %a' /var/lib/tern)" = "tern:tern 700" ] \
    || fail "/var/lib/tern is $(in_root stat -c '%U:%G %a' /var/lib/tern)"

  # ternd as systemd would start it: the unit's user and command line.
  unit=$root/usr/lib/systemd/system/ternd.service
  user=$(sed -n 's/^User=//p' "$unit")
  exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
  [ "$user" = tern ] || fail "the unit runs as '$user'"
  [ -n "$exec_start" ] || fail "the unit has no ExecStart"
  # shellcheck disable=SC2086
  chroot --userspec=tern:tern "$root" $exec_start > "$work/ternd.log" 2>&1 &
  ternd_pid=$!
  trap 'kill -TERM $ternd_pid 2>/dev/null || true; wait $ternd_pid 2>/dev/null || true' EXIT
  export TERN_NODE=http://127.0.0.1:8080 TERN_DATA=/var/lib/tern
  for _ in $(seq 1 300); do
    in_root tern status >/dev/null 2>&1 && break
    kill -0 $ternd_pid 2>/dev/null || { cat "$work/ternd.log"; fail "ternd exited"; }
    sleep 0.1
  done
  in_root tern status >/dev/null || { cat "$work/ternd.log"; fail "ternd did not answer"; }
  [ "$(in_root stat -c %U /var/lib/tern/admin.token)" = tern ] || fail "admin.token not the tern user's"

  in_root tern deploy hello /usr/share/tern/examples/hello.wasm >/dev/null \
    || { cat "$work/ternd.log"; fail "tern deploy"; }
  out=$(in_root tern invoke hello) || fail "tern invoke"
  [ "$out" = "Hello from tern!" ] || fail "hello answered '$out'"
  echo "installed, started as $user with '$exec_start', deployed and called hello: $out"

  # tern new works from the installed binary alone: the templates and SDKs are in it.
  in_root sh -c 'mkdir -p /var/tmp/new && cd /var/tmp/new && tern new pkg-check --lang rust --trigger mqtt' \
    > "$work/tern-new.log" 2>&1 || { cat "$work/tern-new.log"; fail "tern new"; }
  [ -s "$root/var/tmp/new/pkg-check/src/tern.rs" ] || fail "tern new made no Rust SDK copy"
  grep -q 'mqtt:pkg-check/in' "$root/var/tmp/new/pkg-check/tern.yaml" || fail "tern new's tern.yaml lacks the trigger"
  echo "tern new made a project: $(cd "$root/var/tmp/new/pkg-check" && find . -type f | wc -l) files"

  kill -TERM $ternd_pid
  wait $ternd_pid || fail "ternd exited with $? on SIGTERM"
  trap - EXIT
  in_root dpkg --purge tern > "$work/dpkg-purge.log" 2>&1 || { cat "$work/dpkg-purge.log"; fail "dpkg --purge"; }
  [ ! -e "$root/usr/bin/ternd" ] || fail "ternd left behind by the purge"
  [ ! -e "$root/var/lib/tern" ] || fail "/var/lib/tern left behind by the purge"
  [ ! -e "$root/etc/tern/ternd.toml" ] || fail "the configuration left behind by the purge"
  exit 0
fi

build=$(cd "$1" && pwd); work=$2
rm -rf "$work"; mkdir -p "$work"
(cd "$build" && cpack -G DEB -B "$work/out") > "$work/cpack.log" 2>&1 \
  || { cat "$work/cpack.log"; fail "cpack"; }
deb=$(ls "$work"/out/tern_*.deb)
arch=$(dpkg --print-architecture)
[ "$(dpkg-deb -f "$deb" Package)" = tern ] || fail "package name"
[ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || fail "architecture $(dpkg-deb -f "$deb" Architecture)"
dpkg-deb -f "$deb" Depends | grep -q "wabt" || fail "Depends lacks wabt: $(dpkg-deb -f "$deb" Depends)"
# Every shared library the packaged programs load comes from a package that Depends names.
depends=", $(dpkg-deb -f "$deb" Depends),"
multiarch=$(gcc -print-multiarch)
for program in ternd tern; do
  for lib in $(readelf -d "$build/bin/$program" | awk '/NEEDED/ { gsub(/[][]/, "", $5); print $5 }'); do
    # (dpkg -S fails when any of the paths is not a package's, as some of these never are.)
    owner=$({ dpkg -S "/usr/lib/$multiarch/$lib" "/lib/$multiarch/$lib" "/lib64/$lib" 2>/dev/null ||
              true; } | head -1 | cut -d: -f1)
    [ -n "$owner" ] || fail "no installed package has $lib, which $program loads"
    [[ "$depends" == *", $owner,"* || "$depends" == *", $owner "* ]] ||
      fail "$program loads $lib from $owner, which Depends lacks: $(dpkg-deb -f "$deb" Depends)"
  done
done
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/ternd ./usr/bin/tern ./usr/lib/systemd/system/ternd.service ./etc/tern/ternd.toml \
         ./usr/share/tern/examples/hello.wasm ./usr/share/doc/tern/packages.md; do
  grep -qx "$f" <<<"$contents" || fail "$f is not in the package"
done
mkdir -p "$work/control"
dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/tern/ternd.toml "$work/control/conffiles" || fail "ternd.toml is not a conffile"
for s in postinst prerm postrm; do [ -x "$work/control/$s" ] || fail "no executable $s"; done
echo "$(basename "$deb"): $(dpkg-deb -f "$deb" Installed-Size) KiB installed, contents and control as expected"

if [ "$(id -u)" != 0 ] || ! unshare -m -n true 2>/dev/null; then
  echo "SKIP: installing into a clean root needs root (mount and network namespaces)"
  exit 77
fi
unshare -m -n --propagation private bash "$0" --inside "$deb" "$work"
rm -rf "$work"
