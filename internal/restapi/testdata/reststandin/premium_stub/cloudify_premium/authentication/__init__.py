"""Stand-in for cloudify_premium.authentication; holds only auth_base."""
