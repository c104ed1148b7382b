"""Where playbooks run: loading playbook files, launching runs, moving them on."""
