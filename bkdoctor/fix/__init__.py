"""The fix pipeline: change and Plan types and the remediation loader (plan), the host apply/restore scripts,
the fix loop (loop: scan -> plan -> confirm -> apply -> re-check -> journal) and the pure text edits; the `fix`,
`journal` and `rollback` commands (run)."""
