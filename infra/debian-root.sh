#!/usr/bin/env bash
# A real Debian bookworm root filesystem for test nodes that must not be the
# host (Patch Manager: apt upgrades, reboots). Built once from Debian's
# packages with mmdebstrap and cached under .local/debian/; tests run it as
# overlays, one per node (tests/debian_node.py).
#
#   infra/debian-root.sh ensure   build the root unless the cached one was made
#                                 by this recipe (this file); quiet when cached
#   infra/debian-root.sh path     print the cached root's path (fails if none)
#
# The root holds: Debian's minbase with apt-utils (apt-ftparchive) and
# ca-certificates; three fixture packages at version 1.0 that tests upgrade
# from a local repository; apt sources naming only that repository
# (file:/srv/steward-repo, suites bookworm and bookworm-security), so nothing
# in a test reaches a mirror; and recorders in place of reboot, shutdown (and
# systemctl, absent from minbase) that write a line to
# /var/lib/steward-test/reboots and exit 0.
#
# mmdebstrap is not installed on the machine: its Debian package is fetched
# with `apt-get download` and unpacked into .local/tools/mmdebstrap (it needs
# perl and apt, which Debian always has). The mirrors are the machine's own
# apt sources (the files naming bookworm under /etc/apt, or the files in
# STEWARD_DEBIAN_SOURCES, space-separated). Needs root (mount, chroot).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SUITE=bookworm
DEBIAN_DIR="$LOCAL/debian"
ROOTFS="$DEBIAN_DIR/$SUITE-root"
STAMP="$DEBIAN_DIR/$SUITE-root.stamp"
TOOLS="$LOCAL/tools/mmdebstrap"
MMDEBSTRAP="$TOOLS/usr/bin/mmdebstrap"
RECORDS=/var/lib/steward-test/reboots

# The fixtures, all at version 1.0 in the root: name section priority. Tests
# read names, versions, sections and priorities back from the root's dpkg
# database, never from here.
FIXTURES=(
  "steward-fixture-security admin important"
  "steward-fixture-rejected utils optional"
  "steward-fixture-reboot kernel required"
)
FIXTURE_VERSION=1.0
# Beyond minbase: apt-ftparchive (tests index their repository with it) and
# the CA certificates every real node has (the agent's AWS client will not
# start without a trust store).
INCLUDE=apt-utils,ca-certificates

# The recipe: this file less its comment lines (a comment edit rebuilds nothing).
recipe() { grep -v '^[[:space:]]*#' "$ROOT/infra/debian-root.sh" | sha256sum | cut -d' ' -f1; }

cached() {
  [[ -f "$STAMP" && -d "$ROOTFS" ]] && grep -qx "recipe $(recipe)" "$STAMP"
}

# The machine's apt sources files that name the suite (a deb822 .sources or a
# one-line .list file; mmdebstrap takes either and copies it into the root).
sources_files() {
  if [[ -n "${STEWARD_DEBIAN_SOURCES:-}" ]]; then
    printf '%s\n' $STEWARD_DEBIAN_SOURCES
    return
  fi
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    grep -v '^[[:space:]]*#' "$f" | grep -qw "$SUITE" && printf '%s\n' "$f"
  done
}

fetch_mmdebstrap() {
  [[ -x "$MMDEBSTRAP" ]] && return 0
  say "debian-root: fetching mmdebstrap (Debian package, unpacked into .local/tools)"
  local tmp
  tmp=$(mktemp -d)
  # apt's download sandbox user cannot write into root's temporary directory.
  if ! (cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download mmdebstrap >/dev/null); then
    apt-get -q update >/dev/null
    (cd "$tmp" && apt-get -q -o APT::Sandbox::User=root download mmdebstrap >/dev/null)
  fi
  rm -rf "$TOOLS.tmp"
  mkdir -p "$TOOLS.tmp"
  dpkg-deb -x "$tmp"/mmdebstrap_*.deb "$TOOLS.tmp"
  rm -rf "$tmp" "$TOOLS"
  mv "$TOOLS.tmp" "$TOOLS"
}

# fixture_deb DIR NAME SECTION PRIORITY: builds NAME_1.0_all.deb into DIR.
fixture_deb() {
  local out=$1 name=$2 section=$3 priority=$4 pkg
  pkg=$(mktemp -d)
  mkdir -p "$pkg/DEBIAN" "$pkg/usr/share/steward-fixture"
  printf '%s\n' "$FIXTURE_VERSION" >"$pkg/usr/share/steward-fixture/$name.version"
  cat >"$pkg/DEBIAN/control" <<EOF
Package: $name
Version: $FIXTURE_VERSION
Section: $section
Priority: $priority
Architecture: all
Maintainer: Steward tests <tests@steward.invalid>
Description: Steward test fixture ($section, $priority)
 Installed in the Debian test node's root so Patch Manager tests have
 something to upgrade.
EOF
  dpkg-deb --root-owner-group --build "$pkg" "$out/${name}_${FIXTURE_VERSION}_all.deb" >/dev/null
  rm -rf "$pkg"
}

recorder() {
  cat <<EOF
#!/bin/sh
# Steward test node: records a reboot or shutdown request instead of acting
# on it (a test restarts the node to simulate the reboot).
mkdir -p "${RECORDS%/*}"
printf '%s\t%s\n' "\$(date -u +%Y-%m-%dT%H:%M:%SZ)" "\$(basename "\$0") \$*" >>$RECORDS
exit 0
EOF
}

systemctl_recorder() {
  cat <<EOF
#!/bin/sh
# Steward test node: no systemd here. Reboot-like requests are recorded as
# reboot and shutdown are; anything else fails as systemctl does where
# systemd is not running.
case "\${1:-}" in
  reboot|poweroff|halt|kexec|soft-reboot)
    mkdir -p "${RECORDS%/*}"
    printf '%s\t%s\n' "\$(date -u +%Y-%m-%dT%H:%M:%SZ)" "systemctl \$*" >>$RECORDS
    exit 0 ;;
esac
echo "System has not been booted with systemd as init system (PID 1). Can't operate." >&2
exit 1
EOF
}

build() {
  [[ $EUID -eq 0 ]] || die "building the Debian root needs root (mount, chroot)"
  command -v perl >/dev/null || die "perl is needed to run mmdebstrap"
  mapfile -t sources < <(sources_files)
  ((${#sources[@]})) || die "no apt sources file under /etc/apt names $SUITE (set STEWARD_DEBIAN_SOURCES)"
  fetch_mmdebstrap

  local new="$ROOTFS.new" started=$SECONDS
  mkdir -p "$DEBIAN_DIR"
  if findmnt -rn -o TARGET | grep -q "^$DEBIAN_DIR/"; then
    die "something is mounted under .local/debian"
  fi
  rm -rf "$new"
  say "debian-root: building $SUITE minbase with mmdebstrap from ${sources[*]}"
  # In a mount and PID namespace of its own: whatever mmdebstrap mounts in
  # the root (proc, sys, dev) goes away with it, even a mount it could not
  # unmount because some process of the build still held it.
  PATH="$TOOLS/usr/bin:$PATH" unshare --mount --pid --fork --propagation private \
    perl "$MMDEBSTRAP" --quiet --mode=root --variant=minbase \
    --include="$INCLUDE" "$SUITE" "$new" "${sources[@]}" </dev/null

  # The fixtures at 1.0, installed by the root's own dpkg.
  local debs
  debs=$(mktemp -d "$new/tmp/fixtures.XXXXXX")
  local line
  for line in "${FIXTURES[@]}"; do
    # shellcheck disable=SC2086
    fixture_deb "$debs" $line
  done
  chroot "$new" sh -c 'dpkg -i "$1"/*.deb' sh "${debs#"$new"}" >/dev/null
  rm -rf "$debs"

  # Only the local repository: apt never reaches a mirror from a test node.
  rm -f "$new/etc/apt/sources.list" "$new"/etc/apt/sources.list.d/*
  cat >"$new/etc/apt/sources.list.d/steward-repo.list" <<EOF
deb [trusted=yes] file:/srv/steward-repo $SUITE main
deb [trusted=yes] file:/srv/steward-repo $SUITE-security main
EOF
  mkdir -p "$new/srv/steward-repo" "$new/opt/steward"
  find "$new/var/lib/apt/lists" -maxdepth 1 -type f ! -name lock -delete
  rm -f "$new"/var/cache/apt/*.bin

  # Reboot recorders where minbase has no such command (and in place of any
  # it has). /sbin is /usr/sbin on a merged-/usr root; write both otherwise.
  local dir
  for dir in usr/sbin sbin; do
    [[ -L "$new/$dir" ]] && continue
    recorder >"$new/$dir/reboot"
    recorder >"$new/$dir/shutdown"
    chmod 755 "$new/$dir/reboot" "$new/$dir/shutdown"
  done
  if ! chroot "$new" sh -c 'command -v systemctl' >/dev/null; then
    systemctl_recorder >"$new/usr/bin/systemctl"
    chmod 755 "$new/usr/bin/systemctl"
  fi
  # A node's /run is a fresh tmpfs at each start, so /var/run/reboot-required
  # goes away on a simulated reboot as it does on a real one.
  [[ "$(readlink "$new/var/run")" =~ ^(/run|\.\./run)$ ]] || die "/var/run is not a link to /run in the root"
  printf 'Steward Debian test node (%s)\n' "$SUITE" >"$new/etc/steward-test-node"

  rm -rf "$ROOTFS"
  mv "$new" "$ROOTFS"
  {
    echo "recipe $(recipe)"
    echo "built-with $(PATH="$TOOLS/usr/bin:$PATH" perl "$MMDEBSTRAP" --version 2>&1 | head -1)"
    echo "suite $SUITE"
    echo "debian_version $(cat "$ROOTFS/etc/debian_version")"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - started))s"
  } >"$STAMP"
  say "debian-root: built in $((SECONDS - started))s, $(du -sh "$ROOTFS" | cut -f1)"
}

# Builders take the lock alone, running nodes share it (tests/debian_node.py):
# two builds never race, and a build never replaces a root a node runs on.
LOCK="$DEBIAN_DIR/$SUITE-root.lock"
LOCK_WAIT=${STEWARD_DEBIAN_ROOT_LOCK_WAIT:-900}

case "${1:-}" in
  ensure)
    cached && exit 0
    mkdir -p "$DEBIAN_DIR"
    exec 9>>"$LOCK"
    flock -w "$LOCK_WAIT" 9 || die "the Debian root is in use or being built (waited ${LOCK_WAIT}s for $LOCK)"
    cached || build ;;
  path)
    cached || die "no Debian root built by this recipe: run infra/debian-root.sh ensure"
    printf '%s\n' "$ROOTFS" ;;
  *) die "usage: infra/debian-root.sh ensure|path" ;;
esac
