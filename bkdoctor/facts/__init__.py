"""What bkdoctor reads: host facts (one record per fact: probe sections + parser), the probe script's framing,
the cluster's objects through its API, and small helpers over them (k8s dicts, OS identification, Corefile)."""
