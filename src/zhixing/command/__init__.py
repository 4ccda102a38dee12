"""Command center: duty, roll call, assistance requests, escalation, the board."""
