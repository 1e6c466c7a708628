"""MCP servers: a team's registered servers (CRUD, live tool listing) and the toolsets that
give an agent's runs their tools."""
