"""The web frontend: the desktop site a browser loads, and its same-origin path to the API."""
