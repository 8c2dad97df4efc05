"""How people and platforms reach the bot: the `chungsuc` command and the webhook server."""
