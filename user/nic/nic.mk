# SPDX-License-Identifier: MIT
# user/nic/nic.mk -- the XDP side of the daemon. Only the loader includes a skeleton
# (include/sluice/abi.h is the contract; the skeleton is the loader's private view of the
# object), so only its object waits for the skeletons.
$(OUTPUT)/user/nic/bpf_loader.o: $(BPF_SKELS)
