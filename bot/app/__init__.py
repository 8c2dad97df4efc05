"""What a process runs: settings, the services handlers use, the jobs beside a bot."""
