"""Reading the project's YAML files into typed models, with one-line ``file:line: field`` errors.

Shared by every package that reads a file (services, chaos, dashboards), and owned by none of
them: a malformed file is a :class:`configfiles.errors.ConfigError`, never an HTTP error.
"""
