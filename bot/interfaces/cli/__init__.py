"""The `chungsuc` command: `main` wires the commands; `common` is what they share."""
