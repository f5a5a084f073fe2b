#!/bin/bash
# The exit code says whose move it is: 2 for a request that does not fit
# the files (coalescing a disk with no parent is not "damaged"), 3 for a
# damaged image, 4 for a refusal, 1 for a failure.  vhd-util keeps
# blktap's statuses for the same cases (-EINVAL, printed as 22).
. "$(dirname "$0")/functions.sh"
need_corpus
cd "$TMP" || fail "no tmp"
"$VHD" create base.vhd 8M >/dev/null && "$VHD" create --fixed fixed.vhd 4M >/dev/null &&
	"$VHD" snapshot base.vhd mid.vhd >/dev/null && "$VHD" snapshot mid.vhd top.vhd >/dev/null &&
	"$VHD" set base.vhd hidden on && "$VHD" set mid.vhd hidden on || fail "setup"
head -c 1048576 /dev/urandom >raw.img
# a child whose parent's footers (both copies) and header are garbage
cp -a base.vhd bad-base.vhd && "$VHD" snapshot bad-base.vhd bad-child.vhd >/dev/null || fail "setup"
"$VHD" set bad-base.vhd hidden on || fail "setup"
size=$(stat -c %s bad-base.vhd)
for off in 0 512 $((size - 512)); do
	head -c 512 /dev/urandom | dd of=bad-base.vhd bs=512 seek=$((off / 512)) conv=notrunc status=none
done

checked=0
# want CODE MESSAGE-PATTERN CMD...: CMD exits CODE and says MESSAGE-PATTERN
want() {
	local code=$1 pattern=$2; shift 2
	expect_exit "$code" "$@"
	grep -Eq "$pattern" "$TMP/.out" || fail "'$*': message does not match '$pattern': $(cat "$TMP/.out")"
	checked=$((checked + 1))
}
want 2 'base.vhd: not a differencing disk' "$VHD" coalesce base.vhd
want 2 'fixed.vhd: not a differencing disk' "$VHD" coalesce fixed.vhd
want 2 'not one of its ancestors' "$VHD" commit --base top.vhd mid.vhd
want 2 "is its descendant" "$VHD" reparent mid.vhd top.vhd
want 2 'is a VHD' "$VHD" snapshot --raw-parent base.vhd x.vhd
want 3 'primary footer invalid' "$VHD" info bad-base.vhd
want 3 'bad-base.vhd.*(footer|header)' "$VHD" coalesce bad-child.vhd
want 3 'not a VHD' "$VHD" repair bad-base.vhd
want 3 'header is invalid: invalid cookie' "$VHD" info "$CORPUS/bad/header-bad-cookie.vhd"
want 3 'points past end of file' "$VHD" map "$CORPUS/bad/bat-past-eof.vhd"
want 3 'too small' "$VHD" info "$CORPUS/bad/zero-length.vhd"
want 4 'exists' "$VHD" create base.vhd 8M
want 4 'shrinking' "$VHD" resize base.vhd 4M
want 1 'No such file' "$VHD" info missing.vhd
want 2 'Usage|usage' "$VHD" coalesce
# vhd-util: blktap's statuses for the same requests
want 22 'error coalescing: -22' "$B/vhd-util" coalesce -n base.vhd
want 22 "failed to set parent.*: -22" "$B/vhd-util" modify -n top.vhd -p base.vhd -m
[ -e x.vhd ] && fail "a refused snapshot left x.vhd"
pass "$checked commands: requests that do not fit exit 2, damaged images 3, refusals 4, failures 1; vhd-util still says -22"
