# SPDX-License-Identifier: MIT
# tools/bench/ingress.mk -- tools/bench/ingress, e2e and tls (scripts) need the daemon built.
BENCH_BINS	+= $(OUTPUT)/sluiced
BENCH_RUN	+= tools/bench/ingress
BENCH_RUN	+= tools/bench/e2e
BENCH_RUN	+= tools/bench/tls

# tls_engine: the TLS engine's cost per durable-POST-sized request, in memory (no sockets);
# its certificate is made by the tests' helper (tests/lib/tlscerts.c, the openssl CLI).
BENCH_BINS	+= $(OUTPUT)/tls_engine
BENCH_RUN	+= $(OUTPUT)/tls_engine

$(OUTPUT)/tools/bench/tls_engine.o: CFLAGS += -Itests/lib

$(OUTPUT)/tls_engine: $(OUTPUT)/tools/bench/tls_engine.o $(BENCH_STATS) $(OUTPUT)/tests/lib/tlscerts.o \
		      $(LIBSLUICE)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ -lssl -lcrypto -o $@
