# SPDX-License-Identifier: MIT
# tools/report/report.mk -- `make report`: the hardening report, measured (tools/report/README.md)
#
#   make report                      every scenario in tools/report/scenarios/, full length
#   make report QUICK=1              CI-sized runs (a few minutes in all)
#   make report SCENARIOS="a b"      only these; the other results stay
#   make report RENDER_ONLY=1        re-render REPORT.md and the plots from the results
#   REPORT_DIR=dir (default report), REPORT_TIMEOUT=seconds per scenario
.PHONY: report

REPORT_DIR	?= report

report: $(if $(RENDER_ONLY),,all) ## run the report's scenarios, render report/REPORT.md (QUICK=1, SCENARIOS="a b", RENDER_ONLY=1)
	$(Q)OUTPUT=$(OUTPUT) tools/report/run $(if $(QUICK),--quick) \
		$(if $(RENDER_ONLY),--render-only) $(if $(SCENARIOS),--scenarios "$(SCENARIOS)") \
		$(REPORT_DIR)
