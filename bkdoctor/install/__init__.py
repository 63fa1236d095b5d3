"""`bkdoctor install`: the guided deployment, phase by phase (phases.yaml), each step gated by checks."""
