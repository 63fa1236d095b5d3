"""What the operator gives bkdoctor: the inventory (and its schema), Ansible inventories, site config,
collected bundles, thresholds and the site's own files (custom.yaml, VERSION); and the one way a command builds its
inventory and cluster access from them (targets)."""
