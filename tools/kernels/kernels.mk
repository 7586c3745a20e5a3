# SPDX-License-Identifier: MIT
# tools/kernels/kernels.mk -- `make test-kernels`: the XDP program, loader and daemon on Debian's
# kernels, each booted in qemu (tools/kernels/run; KERNELS="6.1" picks series, TESTS= the filter).
.PHONY: test-kernels

test-kernels: all $(OUTPUT)/test_progs ## boot Debian kernels in qemu, run the kernel-facing tests in each
	$(Q)OUTPUT=$(OUTPUT) tools/kernels/run $(KERNELS)
