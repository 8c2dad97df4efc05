"""What the bot knows and publishes: reference data (areas, criteria), FAQ, news, campaign
files, status import, exports, the sample, templates."""
