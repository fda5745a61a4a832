"""The engine that plays a scenario: the run loop (``runner``), one function per step kind
(``steps``), the figures and verdicts (``verdicts``), the run's own metrics (``events``), and the
hooks through which a workshop shapes a run without subclassing it (``hooks``)."""
