#!/bin/sh
# The guest's package stage (guest-suite.sh runs it as /mnt/hull/package-check): the Debian
# package the host built (`cargo deb`, docs/install.md) installed on a stock Debian 12 host,
# its man pages and completions checked, one docker and one podman container run through
# /usr/bin/hull on the clients' default (systemd) settings, then the package purged and
# nothing of it left.
set -eu
deb=$1
e2e=$2
dev_hull=$3
fail() { echo "package-check: $*" >&2; exit 1; }
# A failed check leaves neither the package nor the moved development build behind.
cleanup() {
    [ ! -e "$dev_hull.off" ] || mv "$dev_hull.off" "$dev_hull"
    if dpkg -s hull >/dev/null 2>&1; then dpkg --purge hull >/dev/null || true; fi
}
trap cleanup EXIT

[ ! -e /usr/bin/hull ] || fail "/usr/bin/hull exists before the package is installed"
dpkg -i "$deb"
dpkg -s hull | grep -q '^Status: install ok installed' || fail "dpkg does not list hull as installed"
files=$(dpkg -L hull)
/usr/bin/hull --version
/usr/bin/hull --version | grep -q '^libseccomp: 2\.' || fail "--version names no libseccomp"
file_of() { echo "$files" | grep -qx "$1" || fail "the package lacks $1"; }
file_of /usr/bin/hull
file_of /usr/share/doc/hull/copyright
file_of /usr/share/bash-completion/completions/hull
file_of /usr/share/zsh/vendor-completions/_hull
file_of /usr/share/fish/vendor_completions.d/hull.fish

# `man hull-run` and `man hull`.
[ "$(man -w hull-run)" = /usr/share/man/man8/hull-run.8.gz ] || fail "man -w hull-run: $(man -w hull-run 2>&1)"
MANWIDTH=100 man hull-run 2>/dev/null | grep -q -- '--console-socket' || fail "man hull-run lacks --console-socket"
MANWIDTH=100 man 8 hull 2>/dev/null | grep -q 'hull-checkpoint(8)' || fail "man hull lacks its commands"

# `hull <TAB>` and `hull run --<TAB>` in bash, through bash-completion's loader as an
# interactive shell finds it.
complete_words() {
    bash -c '. /usr/share/bash-completion/bash_completion
        _completion_loader hull
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        set -f; COMP_WORDS=($COMP_LINE); set +f
        case $COMP_LINE in *" ") COMP_WORDS+=(""); esac
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        $(complete -p hull | sed "s/.*-F \([^ ]*\).*/\1/") hull "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}"' complete "$@"
}
complete_words "hull ch" | grep -qx checkpoint || fail "hull ch<TAB> does not give checkpoint: $(complete_words 'hull ch')"
complete_words "hull run --con" | grep -qx -- --console-socket || fail "hull run --con<TAB>: $(complete_words 'hull run --con')"
echo "package-check: installed: $(echo "$files" | wc -l) paths, man pages and completions work"

# One docker and one podman container through /usr/bin/hull, on their default settings (the
# systemd cgroup driver): the client tests, pointed at the installed binary.
# The development build the other stages use is moved away meanwhile: if the tests ran
# anything but /usr/bin/hull, they fail.
mv "$dev_hull" "$dev_hull.off"
HULL_TEST_RUNTIME=/usr/bin/hull "$e2e" --test-threads=1 --include-ignored --exact \
    docker::systemd_run_limits_update_exec_pause_stop \
    podman::systemd_run_limits_update_exec_pause_stop
mv "$dev_hull.off" "$dev_hull"

dpkg --purge hull
if dpkg -s hull >/dev/null 2>&1; then fail "dpkg still knows hull after the purge"; fi
left=""
for f in $files; do
    # Directories the package shares with others (/usr, /usr/share/man/man8, …) stay.
    if [ -e "$f" ] && [ ! -d "$f" ]; then left="$left $f"; fi
done
[ -z "$left" ] || fail "left after the purge:$left"
for d in /usr/share/doc/hull; do [ ! -e "$d" ] || fail "left after the purge: $d"; done
echo "package-check: purged, nothing of the package left"
