"""The fix pipeline: the remediation contract, change types and loader (plan), shared plan helpers (fixkit), the
host apply/restore scripts (hostscript), the fix loop (loop: scan -> plan -> confirm -> apply -> re-check ->
journal), the pure text edits (edits) and the `fix`, `journal` and `rollback` commands (run)."""
