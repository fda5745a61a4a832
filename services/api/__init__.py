"""The API replicas: the public API both the web page and the mobile app call."""
