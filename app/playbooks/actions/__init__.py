"""Automated playbook actions, one module per action type."""
