# SPDX-License-Identifier: MIT
# tools/kafka-group/kafka-group.mk -- a bare librdkafka consumer group: takeover time after a
# member's SIGKILL (the floor the worker's sigkill test compares itself with).
BINS		+= $(OUTPUT)/kafka-group

$(OUTPUT)/kafka-group: $(OUTPUT)/tools/kafka-group/kafka-group.o
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $^ -lrdkafka -o $@
