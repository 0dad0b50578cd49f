"""Which instances serve which models: the fleet file and environment (config), the hub's membership
and health monitor (hub), and an instance's registration with a hub (link)."""
