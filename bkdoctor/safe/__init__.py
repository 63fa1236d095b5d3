"""Safety for everything that crosses a boundary: terminal text, secrets, YAML input, shell words, output files,
host names."""
