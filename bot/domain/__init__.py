"""The domain's words and numbers: amounts and dates as villagers type them, text folding,
markup, the one clock and the catalogs. Imports nothing of the bot above it."""
