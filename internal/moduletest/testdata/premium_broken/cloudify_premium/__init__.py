"""Test-only imitation of the manager's premium package; see
authentication/auth_base.py."""
