"""Hugging Face Spaces bundle builder and deploy command (see the ship-it issue)."""
