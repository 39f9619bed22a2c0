"""Test-only premium package whose auth_base fails to import, as the real
one may outside a running manager."""
raise ImportError("auth_base needs the manager's configuration")
