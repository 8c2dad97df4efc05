"""Channel adapters: each turns its messenger's updates into `Incoming` and `Reply` back."""
