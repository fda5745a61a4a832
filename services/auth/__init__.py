"""The auth backend: logins, sessions, guest tokens, token checks and their rate limits."""
