"""The demo login that ``serve`` creates on an empty database and ``chat`` uses by default.

Kept apart from ``bootstrap`` so the chat client does not import the server to know it.
"""

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password"
