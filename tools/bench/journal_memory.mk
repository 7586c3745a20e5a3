# SPDX-License-Identifier: MIT
# tools/bench/journal_memory.mk -- sluiced's RSS through a database outage of 1,000,000 events
# (a script: needs the daemon and loadgen built). Alone: make bench BENCH=journal_memory
BENCH_BINS	+= $(OUTPUT)/sluiced $(OUTPUT)/loadgen
BENCH_RUN	+= tools/bench/journal_memory
