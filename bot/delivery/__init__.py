"""The one outbox: notices and broadcasts, the sender and its limiter, digests, reminders and the
scheduler. Transports for each messenger live with their channel."""
