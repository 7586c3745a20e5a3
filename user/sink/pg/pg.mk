# SPDX-License-Identifier: MIT
# user/sink/pg/pg.mk -- embed user/sink/pg/migrations/*.sql into the binary as a C table.
#
# Each NNN_name.sql becomes { NNN, "NNN_name", "<text>" } in $(OUTPUT)/pg_migrations.h, in
# file-name order; user/sink/pg/migrate.c includes it.
PG_MIGRATIONS	:= $(sort $(wildcard user/sink/pg/migrations/*.sql))

$(OUTPUT)/pg_migrations.h: $(PG_MIGRATIONS) user/sink/pg/pg.mk | $(OUTPUT)
	$(call msg,GEN,$@)
	$(Q)awk 'FNR == 1 { if (NR > 1) print "\t},"; n = FILENAME; sub(/.*\//, "", n); \
		sub(/\.sql$$/, "", n); printf "\t{ %d, \"%s\",\n", n + 0, n } \
		{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); printf "\t  \"%s\\n\"\n", $$0 } \
		END { if (NR > 0) print "\t}," }' $(PG_MIGRATIONS) > $@.tmp && mv $@.tmp $@

$(OUTPUT)/user/sink/pg/migrate.o: $(OUTPUT)/pg_migrations.h
