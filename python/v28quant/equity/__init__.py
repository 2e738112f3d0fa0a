"""The equity engine and its signal sources."""
