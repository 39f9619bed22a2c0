"""Stand-in for the cloudify_premium package; holds only auth_base."""
