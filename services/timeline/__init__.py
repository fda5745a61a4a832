"""The timeline backend: builds home timelines and trends, with a capacity limit and a cache."""
