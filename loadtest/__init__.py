"""Load generation: Locust cohorts of web-browser users and mobile-app users.

Run through ``failwhale up`` (or ``locust -f loadtest/locustfile.py``). This package never
imports ``services``: what the web page does is read at run time from the web service's
``/pages.json``, the same definition the page's JavaScript runs.
"""
