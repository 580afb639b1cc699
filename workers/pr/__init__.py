"""Pull requests: chat-ops commands, the runs they start, and what the PR sees of them (report, status)."""
