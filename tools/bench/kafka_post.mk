# SPDX-License-Identifier: MIT
# tools/bench/kafka_post.mk -- tools/bench/kafka_post (script): durable POST, Kafka vs journal.
BENCH_BINS	+= $(OUTPUT)/sluiced $(OUTPUT)/kafka-mock
BENCH_RUN	+= tools/bench/kafka_post
