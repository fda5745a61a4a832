"""The chaos side of failwhale: the lab supervisor today; faults, rollouts and scenarios on top of it.

``chaos`` may import ``services`` (it runs them); ``services`` never imports ``chaos``.
"""
