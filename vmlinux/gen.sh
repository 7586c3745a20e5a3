#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# vmlinux/gen.sh -- regenerate vmlinux/<arch>/vmlinux.h from the running kernel's BTF.
#
# CO-RE relocations make the header portable across kernels, so regenerating is only
# needed to pick up types newer than the ones already in it. Run on a host of the
# target architecture: ./vmlinux/gen.sh [BTF-FILE]
set -euo pipefail
btf=${1:-/sys/kernel/btf/vmlinux}
case "$(uname -m)" in
x86_64) arch=x86 ;;
aarch64) arch=arm64 ;;
*) echo "vmlinux/gen.sh: unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
[ -r "$btf" ] || { echo "vmlinux/gen.sh: $btf: not readable (kernel built without CONFIG_DEBUG_INFO_BTF?)" >&2; exit 1; }
dir=$(dirname "$0")/$arch
mkdir -p "$dir"
bpftool btf dump file "$btf" format c >"$dir/vmlinux.h.tmp"
mv "$dir/vmlinux.h.tmp" "$dir/vmlinux.h"
echo "vmlinux/gen.sh: wrote $dir/vmlinux.h from $btf (kernel $(uname -r))"
