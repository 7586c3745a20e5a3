# SPDX-License-Identifier: MIT
# tools/bench/ingress.mk -- tools/bench/ingress, e2e and tls (scripts) need the daemon built.
BENCH_BINS	+= $(OUTPUT)/sluiced
BENCH_RUN	+= tools/bench/ingress
BENCH_RUN	+= tools/bench/e2e
BENCH_RUN	+= tools/bench/tls
