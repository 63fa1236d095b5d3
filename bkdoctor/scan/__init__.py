"""The scan pipeline: rule loading (loader), the engine that probes targets and runs pure rules, the rule
helpers (rulekit), FAQ failure signatures (faq) and the operators' own YAML rules (siterules); the `scan` and `collect` commands (run) and
the `rules` listing (rulelist)."""
