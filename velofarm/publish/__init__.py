"""Publishers: where a verified release goes. One interface, chosen in farm.toml."""
