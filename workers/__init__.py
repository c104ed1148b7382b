"""Where playbooks run: RQ queues, the jobs, the worker and the scheduler entry points."""
