"""The notifications backend: likes, follows and mentions for a user."""
