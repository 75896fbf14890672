"""The agent loop, its model layer and the offline policy."""
