# SPDX-License-Identifier: MIT
# tools/bench/kafka.mk -- the Kafka backend: the queue alone against a bare librdkafka loop on
# the same in-process mock cluster (kafka_queue), and end to end with 2 worker processes
# against the journal backend (tools/bench/kafka_e2e, a script: needs the daemon and
# kafka-mock built). Alone: make bench BENCH=kafka_queue (or kafka_e2e)
BENCH_BINS	+= $(OUTPUT)/kafka_queue $(OUTPUT)/sluiced $(OUTPUT)/kafka-mock
BENCH_RUN	+= $(OUTPUT)/kafka_queue
BENCH_RUN	+= tools/bench/kafka_e2e

$(OUTPUT)/kafka_queue: $(OUTPUT)/tools/bench/kafka_queue.o $(BENCH_STATS) $(LIBSLUICE)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ -lrdkafka -ljansson -luring -lm -o $@
