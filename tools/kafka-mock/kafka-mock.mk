# SPDX-License-Identifier: MIT
# tools/kafka-mock/kafka-mock.mk -- a librdkafka mock cluster with fault commands (tests,
# make run QUEUE=kafka).
BINS		+= $(OUTPUT)/kafka-mock

$(OUTPUT)/kafka-mock: $(OUTPUT)/tools/kafka-mock/kafka-mock.o
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ -lrdkafka -o $@
