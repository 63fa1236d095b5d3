"""Exports of the remediations to other tools (Ansible)."""
